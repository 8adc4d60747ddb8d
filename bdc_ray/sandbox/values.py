"""Plain values: the only things allowed to cross from untrusted code into a verdict.

A returned object is trusted by nothing but its exact type. Subclasses (an `int` whose
`__eq__` always says yes) and foreign objects are rejected before any comparison, because
comparing them would run their code. The encoder runs in the untrusted child and turns a
return value into type-tagged JSON; the decoder runs in the trusted parent and rebuilds plain
builtins from it, so whatever the child sends, the parent only ever compares builtins. The
`require_*` checks do the same job inside assertion test code, which runs in the child.
"""

from __future__ import annotations

import builtins
import collections
import decimal
import fractions
import functools
import types
from collections.abc import Callable
from typing import Any

from bdc_ray.sandbox.source import PROGRAM_FILE

MAX_DEPTH = 200

# Captured when the (trusted) worker imports this module, before any untrusted code runs, so
# a program that rebinds `builtins.type` does not change what the checks below call.
_type, _id, _float_repr, _hex = type, id, float.__repr__, hex
_type_flags = type.__dict__["__flags__"].__get__  # not overridable by a metaclass
# Builtin and C-extension types are immutable (their behaviour is fixed C code); every class
# a program can create, or monkeypatch, is mutable.
_IMMUTABLETYPE = 1 << 8
_NONE = _type(None)
_SCALARS = (int, float, bool, _NONE, str, bytes)
_DICTS = (dict, collections.Counter, collections.OrderedDict, collections.defaultdict)
_SEQUENCES = (list, tuple, set, frozenset, collections.deque)
_DICT_IDS = frozenset(map(_id, _DICTS))
_SEQUENCE_IDS = frozenset(map(_id, _SEQUENCES))
_PLAIN_IDS = frozenset(map(_id, (*_SCALARS, *_DICTS, *_SEQUENCES, complex, fractions.Fraction, decimal.Decimal)))
_TRUSTED_MUTABLE_IDS = frozenset(map(_id, (collections.Counter, fractions.Fraction)))
_FUNCTION, _METHOD = types.FunctionType, types.MethodType
_CACHED = _type(functools.lru_cache(maxsize=None)(len))
_code_of = _FUNCTION.__dict__["__code__"].__get__
_func_of = _METHOD.__dict__["__func__"].__get__
_module_of = type.__dict__["__module__"].__get__
_TYPE_SUBCLASS = 1 << 31
# Builtins that act on their caller's frame: called through a wrapper, they would see the
# wrapper's. None of them hands a value to a method of another object.
_FRAME_BOUND_IDS = frozenset(_id(getattr(builtins, n)) for n in ("super", "locals", "globals", "vars", "dir", "eval", "exec"))


class Unserialisable(TypeError):
    """A value the tagged encoding refuses (foreign type, subclass, too deep)."""


def encode(value: Any, depth: int = 0) -> list[Any]:
    """Type-tagged JSON form of `value`: `["i", "0x2a"]`, `["l", [...]]`, ...

    Dispatch is on the exact type, by identity, so subclasses and look-alikes never reach
    their own methods here.
    """
    if depth > MAX_DEPTH:
        raise Unserialisable(f"return value nested deeper than {MAX_DEPTH} levels")
    t = _type(value)
    if t is bool:
        return ["b", value is True]
    if t is int:
        return ["i", _hex(value)]
    if t is float:
        return ["f", _float_repr(value)]
    if t is _NONE:
        return ["N"]
    if t is str:
        return ["s", value]
    if t is bytes:
        return ["y", bytes.hex(value)]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [encode(v, depth + 1) for v in t.__iter__(value)]]
    if t is dict:
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]]
    raise Unserialisable(f"unserialisable return type {t.__module__}.{t.__qualname__}")


def decode(tagged: Any) -> Any:
    """Rebuild a value from `encode`'s form; anything malformed raises ValueError."""
    try:
        return _decode(tagged, 0)
    except (TypeError, KeyError, IndexError, RecursionError) as e:
        raise ValueError(f"malformed tagged value: {e}") from e


def _decode(tagged: Any, depth: int) -> Any:
    if depth > MAX_DEPTH or type(tagged) is not list or not tagged or type(tagged[0]) is not str:
        raise ValueError("malformed tagged value")
    tag, body = tagged[0], tagged[1:]
    if tag == "N" and not body:
        return None
    (payload,) = body
    if tag == "b" and type(payload) is bool:
        return payload
    if tag == "i" and type(payload) is str:
        return int(payload, 16)
    if tag == "f" and type(payload) is str:
        return float(payload)
    if tag == "s" and type(payload) is str:
        return payload
    if tag == "y" and type(payload) is str:
        return bytes.fromhex(payload)
    if type(payload) is not list:
        raise ValueError(f"malformed tagged value with tag {tag!r}")
    if tag == "d":
        return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in payload}
    items = [_decode(v, depth + 1) for v in payload]
    containers = {"l": list, "t": tuple, "S": set, "F": frozenset}
    if tag not in containers:
        raise ValueError(f"unknown tag {tag!r}")
    return containers[tag](items)


def impure_type(value: Any) -> str | None:
    """Name of the first value inside `value` (containers searched) that is not plain data.

    Plain: builtin scalars and containers, the collections containers, Fraction, Decimal and
    builtin classes themselves. `==` between plain values runs no program code, so requiring
    plainness of what assertions compare is what makes an always-equal object fail.
    """
    return _first_offender(value, strict=True)


def program_type(value: Any) -> str | None:
    """Name of the first program-defined type of an instance inside `value`, if any.

    Looser than plainness, for intermediate values (call results and operands inside an
    assertion): iterators, views, functions and `re.Match` objects are fine, instances of
    classes the program defined or could patch (whose dunder methods could lie) are not.
    """
    return _first_offender(value, strict=False)


def require_plain(value: Any) -> Any:
    """`value` itself if it is plain; otherwise the assertion it appears in fails."""
    name = impure_type(value)
    if name is not None:
        raise AssertionError(f"assertion compares a non-builtin value of type {name}")
    return value


def require_no_program_types(value: Any) -> Any:
    """`value` itself unless it holds an instance of a program-defined class."""
    name = program_type(value)
    if name is not None:
        raise AssertionError(f"assertion uses a non-builtin value of type {name}")
    return value


def vet_callee(fn: Any) -> Callable[..., Any]:
    """`fn` itself if it is the program's own code, else `fn` behind an argument check.

    The program's functions, methods, classes and callable objects may receive anything,
    the program's own objects included (`f([Pair(5, 24)], 2)`): they are untrusted code
    whose RESULT is checked where it is used. Any other callable (builtins, library and test
    helpers) is trusted code that would run the methods of an object it is given against
    the test's data (`max(candidate(x), y)`), so its arguments must be free of program types.
    """
    if is_program_code(fn) or _id(fn) in _FRAME_BOUND_IDS:
        return fn

    def vetted_call(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            require_no_program_types(value)
        return fn(*args, **kwargs)

    return vetted_call


def is_program_code(fn: Any) -> bool:
    """True if calling `fn` runs code the program defined (not a builtin, library or test helper)."""
    t = _type(fn)
    if t is _FUNCTION:
        return _code_of(fn).co_filename == PROGRAM_FILE
    if t is _METHOD:
        return is_program_code(_func_of(fn))
    if t is _CACHED:  # functools.cache / lru_cache around a function
        return is_program_code(fn.__wrapped__)
    cls = fn if _type_flags(t) & _TYPE_SUBCLASS else t  # a class, or a callable instance
    return not _type_flags(cls) & _IMMUTABLETYPE and _module_of(cls) == "__main__"


def _first_offender(value: Any, strict: bool) -> str | None:
    stack, seen = [value], set()
    while stack:
        v = stack.pop()
        t = _type(v)
        if strict:
            builtin_class = t is type and bool(_type_flags(v) & _IMMUTABLETYPE)
            offends = _id(t) not in _PLAIN_IDS and not builtin_class
        else:
            offends = not _type_flags(t) & _IMMUTABLETYPE and _id(t) not in _TRUSTED_MUTABLE_IDS
        if offends:
            return f"{t.__module__}.{t.__qualname__}"
        if _id(v) in seen:
            continue
        if _id(t) in _DICT_IDS:
            seen.add(_id(v))
            stack.extend(dict.keys(v))
            stack.extend(dict.values(v))
        elif _id(t) in _SEQUENCE_IDS:
            seen.add(_id(v))
            stack.extend(t.__iter__(v))
    return None
