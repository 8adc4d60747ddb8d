"""Public faces resolved on first use: a package's __init__ says what it exports and where it lives.

A stage's face names its entry points, config section, tables and a few types, and importing the
face must stay cheap: `bdc config check` reads every stage's section but should not load torch
because the same face also names the solver. So each name is imported from its module the first
time someone asks for it (PEP 562 module `__getattr__`).

    __all__, __getattr__ = lazy_face(__name__, {"run_boost_stage": ".stage", "BoostStage": ".config"})
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_face(package: str, homes: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """(`__all__`, the module `__getattr__`) of `package`, whose name N lives in module `homes[N]`
    (relative to the package).

    A name may not be its own home's module name (`"materialize": ".materialize"`): importing that
    submodule anywhere sets the package attribute to the MODULE, which then hides the name for
    good, so `from package import materialize` would give a module or a function depending on
    what some other code imported first.
    """
    shadowed = sorted(name for name, home in homes.items() if home.rsplit(".", 1)[-1] == name)
    if shadowed:
        raise ValueError(f"{package}: {shadowed} would be shadowed by the submodule of the same name; rename the module")

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name], package), name)
        setattr(sys.modules[package], name, value)  # found once, then a plain attribute
        return value

    return list(homes), __getattr__
