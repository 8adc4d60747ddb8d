"""Turning source text into code objects, the way benchmark harnesses do.

Programs are compiled in the untrusted child (compiling hostile source can take time and
memory the child's limits should pay for). Assertion test code is benchmark data: the pool
rewrites and compiles it once, caches it, and ships the marshalled code object, so the
program can neither tamper with how it is compiled nor make every test pay for the rewrite.
"""

from __future__ import annotations

import ast
import functools
import marshal
from types import CodeType

PROGRAM_FILE = "solution.py"
TESTS_FILE = "tests.py"
SETUP_FILE = "setup.py"
PLAIN_HELPER = "__bdc_plain__"
VETTED_HELPER = "__bdc_vetted__"
"""Globals the rewritten assertions call; dunder-named so class bodies do not mangle them."""

_MAIN = "__bdc_main__"


def compile_program(source: str) -> CodeType:
    """Compile a program; if it only compiles inside a function, compile it wrapped.

    APPS reference solutions use a top-level `return` (or `nonlocal`), because the APPS
    harness ran stdin programs as a function body. Wrapping is the fallback only, since it
    changes the scope of top-level names.
    """
    try:
        return compile(source, PROGRAM_FILE, "exec", dont_inherit=True)
    except SyntaxError as original:
        try:
            wrapped = _wrapped_in_function(ast.parse(source, PROGRAM_FILE))
            return compile(wrapped, PROGRAM_FILE, "exec", dont_inherit=True)
        except SyntaxError:
            raise original from None


@functools.lru_cache(maxsize=2048)
def marshalled_assert_test(setup: str, code: str) -> tuple[bytes, bytes]:
    """Marshalled code of an assertion test's setup and (rewritten) test code."""
    setup_code = compile(setup, SETUP_FILE, "exec", dont_inherit=True)
    return marshal.dumps(setup_code), marshal.dumps(compile_tests(code))


def compile_tests(source: str) -> CodeType:
    """Compile assertion test code with every assertion made strict (see `_strict`)."""
    tree = _StrictAssertions().visit(ast.parse(source, TESTS_FILE))
    return compile(ast.fix_missing_locations(tree), TESTS_FILE, "exec", dont_inherit=True)


def _wrapped_in_function(tree: ast.Module) -> ast.Module:
    """`def __bdc_main__(): <program>` then a call; star and __future__ imports stay on top,
    since they are syntax errors inside a function."""

    def must_stay_on_top(node: ast.stmt) -> bool:
        return isinstance(node, ast.ImportFrom) and (
            node.module == "__future__" or any(alias.name == "*" for alias in node.names)
        )

    top = [n for n in tree.body if must_stay_on_top(n)]
    body = [n for n in tree.body if not must_stay_on_top(n)] or [ast.Pass()]
    main = ast.FunctionDef(
        name=_MAIN,
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=body,
        decorator_list=[],
    )
    call = ast.Expr(ast.Call(ast.Name(_MAIN, ast.Load()), [], []))
    return ast.fix_missing_locations(ast.Module(body=[*top, main, call], type_ignores=[]))


class _StrictAssertions(ast.NodeTransformer):
    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        node.test = _strict(_vetted(node.test))
        return node


_VALUES = (ast.Call, ast.Name, ast.Attribute, ast.Subscript)
_NOT_VALUE_POSITIONS = ((ast.Call, "func"), (ast.Attribute, "value"))


def _vetted(node: ast.AST) -> ast.AST:
    """Check every value an assertion computes with, not only what it finally compares.

    Call results, names, attributes and subscripts used as values (arguments, operands) go
    through the program-type check, so `abs(candidate(x) - y) < 1e-6` fails when candidate
    returns an object whose `__sub__` and `__abs__` lie. Callees and attribute owners are left
    alone: calling a program's method is what a test does.
    """
    for field, old in ast.iter_fields(node):
        is_value = not any(isinstance(node, kind) and field == name for kind, name in _NOT_VALUE_POSITIONS)
        if isinstance(old, list):
            setattr(node, field, [_vetted_child(c, is_value) if isinstance(c, ast.AST) else c for c in old])
        elif isinstance(old, ast.AST):
            setattr(node, field, _vetted_child(old, is_value))
    return node


def _vetted_child(child: ast.AST, is_value: bool) -> ast.AST:
    child = _vetted(child)
    if is_value and isinstance(child, _VALUES) and isinstance(getattr(child, "ctx", ast.Load()), ast.Load):
        return _helper_call(VETTED_HELPER, child)
    return child


def _strict(test: ast.expr) -> ast.expr:
    """Make what an assertion finally decides on trustworthy.

    Operands of comparisons must be plain builtins (values.py): between those `==` is
    Python's own, so 1 == 1.0 still holds while an object whose `__eq__` always says yes
    fails. A bare asserted value only needs to be free of program-defined types (truthiness
    of a builtin, even an `re.Match`, runs no program code). `and`/`or`/`not` are rewritten
    inside.
    """
    if isinstance(test, ast.Compare):
        return ast.Compare(_plain(test.left), test.ops, [_plain(c) for c in test.comparators])
    if isinstance(test, ast.BoolOp):
        return ast.BoolOp(test.op, [_strict(v) for v in test.values])
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return ast.UnaryOp(test.op, _strict(test.operand))
    return _helper_call(VETTED_HELPER, test)


def _plain(expr: ast.expr) -> ast.expr:
    return _helper_call(PLAIN_HELPER, expr)


def _helper_call(helper: str, expr: ast.expr) -> ast.expr:
    return ast.copy_location(ast.Call(ast.Name(helper, ast.Load()), [expr], []), expr)
