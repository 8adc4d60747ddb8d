"""Starting fresh interpreters for workers and the isolation probe.

A fresh `python -I` (not a fork of the pool) so that nothing of the pool process, its memory,
its threads or its environment, reaches the processes that fork untrusted children.
"""

from __future__ import annotations

import os
import sys

import bdc_ray

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(bdc_ray.__file__)))
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); import importlib; "
    "importlib.import_module(sys.argv[2]).{function}(sys.argv[3])"
)


def command(module: str, function: str, argument: str) -> list[str]:
    """argv running `module.function(argument)` in an isolated interpreter like this one."""
    flags = ["-I"] + (["-B"] if sys.flags.dont_write_bytecode else [])
    return [sys.executable, *flags, "-c", _BOOTSTRAP.format(function=function), _PACKAGE_ROOT, module, argument]


def clean_env() -> dict[str, str]:
    """Environment of sandbox processes: nothing inherited from the caller."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}


def project_root() -> str:
    """The directory holding the `bdc_ray` package: project files to hide from programs."""
    return _PACKAGE_ROOT
