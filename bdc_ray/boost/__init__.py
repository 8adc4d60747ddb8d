"""Boost: MC-Tree-of-Agents search (pure core) and its distributed Ray runner."""
