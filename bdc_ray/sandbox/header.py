"""The import header APPS call-based solutions take for granted.

Call-based (LeetCode style) solutions use `deque`, `gcd`, `List[int]` and friends without
importing them, because the APPS harness prepended an import header to them. The worker
executes this header once at start-up into the `__main__` of call tests, so the header
costs nothing per test. Programs run as scripts (stdin programs of every benchmark,
HumanEval, MBPP) do not get it: `python3 prog.py` does not provide it, and a missing import
must fail the same way it fails there.
"""

from __future__ import annotations

from typing import Any

HEADER = """\
import sys, os, math, cmath, itertools, collections, heapq, bisect, string, re, functools
import random, copy, operator, fractions, decimal, statistics, array, io, time, datetime
from typing import *
from collections import *
from math import *
from itertools import *
from heapq import *
from bisect import *
from functools import *
from operator import itemgetter, attrgetter
from fractions import Fraction
from decimal import Decimal
del pow
"""
"""`from math import *` binds math.pow, which takes no modulus: the builtin `pow(a, b, m)`
must stay visible. No other name of the header shadows a builtin (a test checks)."""


def header_namespace() -> dict[str, Any]:
    """The names the header binds, computed once per worker."""
    namespace: dict[str, Any] = {}
    exec(compile(HEADER, "<import header>", "exec"), namespace)
    namespace.pop("__builtins__", None)
    return namespace
