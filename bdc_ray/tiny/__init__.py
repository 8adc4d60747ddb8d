"""Tiny code models made here: built from scratch on the synthetic suite, evaluated in the sandbox.

Nothing can be downloaded on the CPU machines, so the project trains its own small Llamas
(build.py; data.py: tokenizer and examples; train.py: the loop) and measures them per family
(eval.py). A build is saved in Hugging Face format and loaded by path like any other model.

Names resolve on first use (bdc_ray/lazy.py): the config's `models:` section needs
`TinyModelConfig`, not the tokenizer and evaluation code.
"""

from bdc_ray.lazy import lazy_face

__all__, __getattr__ = lazy_face(
    __name__,
    {
        "TinyBuildInfo": ".build",
        "TinyModelConfig": ".build",
        "build_dir": ".build",
        "build_tiny": ".build",
        "built_tiny": ".build",
        "config_hash": ".build",
        "load_build_info": ".build",
        "encode": ".data",
        "select_problems": ".data",
        "train_tokenizer": ".data",
        "Scores": ".eval",
        "TinyEval": ".eval",
        "evaluate_tiny": ".eval",
        "tiny_prompt": ".eval",
    },
)
