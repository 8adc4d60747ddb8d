"""The lazy public faces (bdc_ray/lazy.py)."""

from __future__ import annotations

import importlib

import pytest

from bdc_ray.lazy import lazy_face


def test_a_name_resolves_to_what_its_module_defines_even_after_its_module_was_imported():
    # Importing the home module first (as a test or a caller may) must not change what the face gives.
    importlib.import_module("bdc_ray.customize.materialized")
    from bdc_ray.customize import materialize

    assert callable(materialize) and materialize.__name__ == "materialize"


def test_a_name_equal_to_its_home_module_is_refused():
    with pytest.raises(ValueError, match="shadowed by the submodule"):
        lazy_face("pkg", {"ok": ".other", "materialize": ".materialize"})
