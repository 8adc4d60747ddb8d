"""Boost: MC-Tree-of-Agents search (pure core) and its distributed Ray runner.

Pure core: tree.py (states, actions, P-UCB, backup), search.py (one problem searched by every
agent together), prompts.py (prompt book and parsers), dedupe.py, records.py (trace records and
SFT rows), cost.py (the generations a search can spend, for `bdc plan`). Ray shell: runner.py
(many problems at once over agent and sandbox actors), stage.py.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "BoostStage": ".config",
    "PromptBook": ".prompts",
    "SearchConfig": ".config",
    "StaleTracesError": ".stage",
    "boost_table": ".tables",
    "run_boost_stage": ".stage",
    "worst_case_generations": ".cost",
})
