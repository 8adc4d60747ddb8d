"""Evaluation: pass@k, APPS pass rate and strict accuracy over sandboxed runs."""
