"""The synthetic task families, one module each; `synth.py` is the public entry point."""

from bdc_ray.problems.synth_families import arith, branching, counting, lists, module, multibranch, stdio, strings
from bdc_ray.problems.synth_families.base import FamilySpec

SPECS: dict[str, FamilySpec] = {
    spec.name: spec
    for spec in (
        arith.SPEC, strings.SPEC, lists.SPEC, counting.SPEC, branching.SPEC, stdio.SPEC, multibranch.SPEC, module.SPEC
    )
}

__all__ = ["SPECS", "FamilySpec"]
