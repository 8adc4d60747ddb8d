"""Customize: an input-aware hypernetwork mixes the LoRA experts rank-wise per problem (DESIGN.md section 4).

Pure torch core: composed_lora.py (the layer's math), inject.py (experts -> composed model),
materialized.py (`materialize`: one routing vector -> a plain peft folder), hypernet.py, features.py,
router.py (statements -> weights, without a model), data.py, train.py, checkpoint.py, solver.py.
Ray shell: tune.py (Ray Tune over the trainer), stage.py.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(__name__, {
    "ComposedLoRA": ".inject",
    "Completion": ".solver",
    "CustomizeConfig": ".config",
    "CustomizedSolver": ".solver",
    "ExpertRef": ".checkpoint",
    "ExpertStack": ".inject",
    "HyperNetArch": ".hypernet",
    "HyperNetwork": ".hypernet",
    "HypernetMeta": ".checkpoint",
    "build_composed": ".loading",
    "load_customized": ".solver",
    "load_expert_stack": ".loading",
    "load_meta": ".checkpoint",
    "load_router": ".router",
    "local_copy": ".loading",
    "materialize": ".materialized",
    "Router": ".router",
    "run_customize_stage": ".stage",
    "save_checkpoint": ".checkpoint",
    "TokenLogprob": ".solver",
    "train_stage": ".stage",
    "tune_stage": ".stage",
})
