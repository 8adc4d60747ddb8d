"""Tiny code models made here: built from scratch on the synthetic suite, evaluated in the sandbox.

Nothing can be downloaded on the CPU machines, so the project trains its own small Llamas
(build.py; data.py: tokenizer and examples; train.py: the loop) and measures them per family
(eval.py). A build is saved in Hugging Face format and loaded by path like any other model.
"""

from bdc_ray.tiny.build import TinyBuildInfo, TinyModelConfig, build_dir, build_tiny, config_hash, load_build_info
from bdc_ray.tiny.data import encode, select_problems, train_tokenizer
from bdc_ray.tiny.eval import Scores, TinyEval, evaluate_tiny, tiny_prompt

__all__ = [
    "Scores",
    "TinyBuildInfo",
    "TinyEval",
    "TinyModelConfig",
    "build_dir",
    "build_tiny",
    "config_hash",
    "encode",
    "evaluate_tiny",
    "load_build_info",
    "select_problems",
    "tiny_prompt",
    "train_tokenizer",
]
