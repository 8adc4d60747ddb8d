"""The pipeline's evaluation stage: base model vs all-data LoRA vs customized solver on held-out splits.

Every solver decodes the held-out problems in the one prompt format, the sandbox scores them on
all their tests (eval/ does the scoring), and the table says what Disentangle and Customize add
over the base model. config.py is the `stages.eval` section, solvers.py generates and scores,
stage.py is the entry point, tables.py the final table.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "METRIC": ".stage",
    "SOLVER_KINDS": ".solvers",
    "EvalDataset": ".config",
    "EvalStage": ".config",
    "differences_rich": ".tables",
    "heldout_table": ".tables",
    "per_problem": ".differences",
    "solver_dir": ".solvers",
    "run_heldout_stage": ".stage",
})
