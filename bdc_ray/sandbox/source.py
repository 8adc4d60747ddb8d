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
CALLEE_HELPER = "__bdc_callee__"
"""Globals the rewritten assertions call; dunder-named so class bodies do not mangle them."""

WRAPPING_SOURCES = frozenset({"apps"})
"""Benchmarks whose harness ran stdin programs as a function body, so that their programs
may use a top-level `return` or `nonlocal`. Every other program runs as the script it is."""

_MAIN = "__bdc_main__"


def compile_program(source: str, wrap: bool = False) -> CodeType:
    """Compile a program; with `wrap`, one that only compiles inside a function is compiled
    wrapped in one.

    APPS reference solutions use a top-level `return` (or `nonlocal`), because the APPS
    harness ran stdin programs as a function body. Wrapping is the fallback only, since it
    changes the scope of top-level names, and only for APPS (`WRAPPING_SOURCES`): to
    `python3`, and so to every other benchmark, such a program is a syntax error.
    """
    try:
        return compile(source, PROGRAM_FILE, "exec", dont_inherit=True)
    except SyntaxError as original:
        if not wrap:
            raise
        try:
            wrapped = _wrapped_in_function(ast.parse(source, PROGRAM_FILE))
            return compile(wrapped, PROGRAM_FILE, "exec", dont_inherit=True)
        except SyntaxError:
            raise original from None


def script_text(source: str, wrap: bool = False) -> str:
    """The program as the script `compile_program` makes of it: what plain `python3` must be
    given to run what the sandbox runs (the reference runs of `plain.py`)."""
    if not wrap:
        return source
    try:
        compile(source, PROGRAM_FILE, "exec", dont_inherit=True)
        return source
    except SyntaxError:
        try:
            compile_program(source, wrap=True)
        except SyntaxError:
            return source  # python3 reports the same syntax error
        return ast.unparse(_wrapped_in_function(ast.parse(source, PROGRAM_FILE))) + "\n"


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


_CONSUMED: dict[type[ast.AST], tuple[str, ...]] = {
    ast.BinOp: ("left", "right"),
    ast.UnaryOp: ("operand",),
    ast.BoolOp: ("values",),
    ast.Compare: ("left", "comparators"),
    ast.Subscript: ("value", "slice"),
    ast.Slice: ("lower", "upper", "step"),
    ast.IfExp: ("test",),
    ast.comprehension: ("ifs",),
    ast.FormattedValue: ("value",),
}
"""Where an assertion hands a value to trusted code that runs the value's own methods
(operators, comparisons, truth tests, indexing, formatting)."""
_NEVER_WRAPPED = (ast.Constant, ast.Slice, ast.Starred)  # literals; syntax that is no value


def _vetted(node: ast.AST) -> ast.AST:
    """Check every value an assertion hands to trusted code, not only what it finally compares.

    A program-defined object may flow only into program code. Values in the positions of
    `_CONSUMED` go through the program-type check, so `abs(candidate(x) - y) < 1e-6` fails
    when candidate returns an object whose `__sub__` lies; every callee goes through the
    callee check, which lets the program's own functions, classes and methods take anything
    (`f([Pair(5, 24)], 2)` with the program's `Pair`) and checks the arguments of every other
    callable at call time (`max(candidate(x), y)`, `math.fabs(poly(xs, r))`). Building
    lists, tuples and dicts and passing arguments hands nothing to trusted code by itself.
    """
    consumed = _CONSUMED.get(type(node), ())
    for field, old in ast.iter_fields(node):
        if isinstance(old, list):
            setattr(node, field, [_vetted_child(c, field in consumed) if isinstance(c, ast.AST) else c for c in old])
        elif isinstance(old, ast.AST):
            setattr(node, field, _vetted_child(old, field in consumed))
    if isinstance(node, ast.Call):
        node.func = _helper_call(CALLEE_HELPER, node.func)
    return node


def _vetted_child(child: ast.AST, is_consumed: bool) -> ast.AST:
    child = _vetted(child)
    if is_consumed and isinstance(child, ast.expr) and not isinstance(child, _NEVER_WRAPPED):
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
