"""A module-scoped warm sandbox with small limits, so the suite stays fast on 2 cores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bdc_ray.sandbox import Sandbox
from tests.sandbox.support import LIMITS


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=2, limits=LIMITS) as sb:
        yield sb
