"""The multi-part families (multibranch, module): the suite's rules hold, and public tests give
partial credit per part, which is what makes them problems a search can gain on."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections import Counter, defaultdict

import pytest

from bdc_ray.problems.synth import (
    FAMILIES,
    MULTI_PART_FAMILIES,
    SynthConfig,
    Suite,
    _held_by_hash,
    generate_suite,
    length_stats,
)
from bdc_ray.problems.synth_families import SPECS
from bdc_ray.problems.types import CallTest, Problem
from tests.problems.test_synth import _fails_some, _FlipStrictness, _passes, _plain, _same_on


@pytest.fixture(scope="module")
def multi() -> Suite:
    return generate_suite(
        SynthConfig(seed=0, train_per_family=300, heldout_per_family=40, heldout_comp_per_family=30,
                    families=list(MULTI_PART_FAMILIES))
    )


def _all(suite: Suite) -> list[Problem]:
    return [*suite.train, *suite.heldout, *suite.heldout_comp]


def _family(suite: Suite, family: str) -> list[Problem]:
    return [p for p in _all(suite) if p.family == family]


def _passing(code: str, tests: list) -> list[bool]:
    return [_passes(code, t) for t in tests]


def test_multi_part_families_are_generated_only_when_named(multi):
    default = generate_suite(SynthConfig(train_per_family=2, heldout_per_family=1, heldout_comp_per_family=1))
    assert {p.family for p in _all(default)} == set(FAMILIES)
    assert {p.family for p in _all(multi)} == set(MULTI_PART_FAMILIES)
    both = generate_suite(SynthConfig(train_per_family=3, heldout_per_family=2, heldout_comp_per_family=2,
                                      families=["arith", "module"]))
    alone = {p.id: p for p in _all(generate_suite(SynthConfig(train_per_family=3, heldout_per_family=2,
                                                              heldout_comp_per_family=2, families=["module"])))}
    assert all(alone[p.id] == p for p in _all(both) if p.family == "module")


def test_every_reference_passes_its_tests_with_plain_values(multi):
    for p in _all(multi):
        assert all(_passes(p.reference_solutions[0], t) for t in p.tests), p.id
        namespace: dict = {}
        exec(p.reference_solutions[0], namespace)
        for t in p.tests:
            assert isinstance(t, CallTest)
            assert _plain(namespace[t.fn_name](*copy.deepcopy(t.args))), p.id
            assert type(t).model_validate_json(t.model_dump_json()) == t
        ast.parse(p.reference_solutions[0])


def test_every_part_has_public_tests_and_the_parts_are_labelled(multi):
    for p in _all(multi):
        public, hidden = p.metadata["public_parts"], p.metadata["hidden_parts"]
        assert len(public) == len(p.public_tests) and len(hidden) == len(p.hidden_tests), p.id
        assert set(hidden) <= set(public), p.id
        if p.family == "multibranch":
            cases = p.metadata["structure"].count("+") + 2  # conditions + else
            assert sorted(public) == [f"case{i}" for i in range(1, cases + 1)], p.id  # exactly one per case
            assert 4 <= len(p.hidden_tests) <= 8
        else:
            functions = [t.fn_name for t in p.public_tests]
            assert len(set(functions)) == 2 and p.entry_point is None, p.id
            assert all(n >= 3 for n in Counter(public).values()), p.id
            assert [f.split(":")[1] for f in dict.fromkeys(public)] == p.metadata["structure"].split("+"), p.id


def test_partial_credit_is_per_part(multi):
    """A program with one part broken passes exactly the public tests of the other parts."""
    checked = 0
    for p in _all(multi):
        parts = p.metadata["public_parts"]
        reference = p.reference_solutions[0]
        if p.family == "module":
            second = p.public_tests[-1].fn_name
            broken = re.sub(rf"def {second}\((\w+)\):\n(    .*\n?)+", rf"def {second}(\1):\n    return None\n", reference)
            assert broken != reference
            expected = [not part.startswith("2:") for part in parts]
        else:
            tree = ast.parse(reference)
            returns = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Return)), key=lambda n: n.lineno)
            returns[1].value = ast.Constant("wrong")  # the answer of case 2
            broken = ast.unparse(tree)
            expected = [part != "case2" for part in parts]
        assert _passing(broken, p.public_tests) == expected, p.id
        checked += 1
    assert checked == len(_all(multi))


def test_the_order_of_adjacent_checks_is_tested(multi):
    """Swapping two adjacent conditions of a multibranch chain fails a test whenever it matters."""
    caught = []
    for p in _family(multi, "multibranch"):
        tree = ast.parse(p.reference_solutions[0])
        first, second = sorted((n for n in ast.walk(tree) if isinstance(n, ast.If)), key=lambda n: n.lineno)[:2]
        first.test, second.test = second.test, first.test
        first.body, second.body = second.body, first.body
        swapped = ast.unparse(tree)
        if _same_on(range(-60, 61), p.public_tests[0].fn_name, p.reference_solutions[0], swapped):
            continue
        caught.append(_fails_some(swapped, p.tests))
    assert len(caught) >= 50 and all(caught), f"{caught.count(False)} of {len(caught)} swaps survived"


def test_off_by_one_thresholds_are_caught(multi):
    """`<` written as `<=` in any case of a chain fails a test whenever it changes the function."""
    for p in _family(multi, "multibranch"):
        reference = p.reference_solutions[0]
        counter = _FlipStrictness(-1)
        counter.visit(ast.parse(reference))
        for index in range(counter.seen):
            mutant = ast.unparse(_FlipStrictness(index).visit(ast.parse(reference)))
            if not _same_on(range(-60, 61), p.public_tests[0].fn_name, reference, mutant):
                assert _fails_some(mutant, p.tests), (p.id, index)


def test_trivially_wrong_programs_fail_a_public_test(multi):
    for p in _all(multi):
        names = sorted({t.fn_name for t in p.public_tests})
        for body in ("return 0", "return a", "return None", f"return {json.dumps(p.public_tests[0].expected)}"):
            wrong = "".join(f"def {n}(a):\n    {body}\n" for n in names)
            assert _fails_some(wrong, p.public_tests), (p.id, body)


def test_splits_are_key_disjoint_and_follow_the_hash_rule(multi):
    train = {p.metadata["key"] for p in multi.train}
    for p in multi.heldout:
        assert p.metadata["key"] not in train and _held_by_hash(p.metadata["key"]), p.id
    assert all(not _held_by_hash(k) for k in train)
    for family in MULTI_PART_FAMILIES:
        comp = SPECS[family].comp_heldout
        assert all(tuple(p.metadata["structure"].split("+")) in comp for p in multi.heldout_comp if p.family == family)
        assert not any(tuple(p.metadata["structure"].split("+")) in comp for p in multi.train if p.family == family)


def test_module_parts_come_from_their_families_training_pools(multi):
    """A module never carries a key another family holds out (held-out or compositional)."""
    big = generate_suite(SynthConfig(seed=0, train_per_family=1000, heldout_per_family=250, heldout_comp_per_family=250))
    held = {p.metadata["key"] for p in big.heldout + big.heldout_comp}
    for p in _family(multi, "module"):
        for family, (structure, constants) in zip(p.metadata["structure"].split("+"), p.metadata["constants"]):
            key = f"{family}|{'+'.join(structure)}|{json.dumps(constants, separators=(',', ':'))}"
            assert key not in held, (p.id, key)
            assert tuple(structure) not in SPECS[family].comp_heldout, (p.id, key)


def test_compositional_structures_reuse_trained_parts(multi):
    trained = defaultdict(set)
    for p in multi.train:
        ops = p.metadata["structure"].split("+")
        for i, op in enumerate(ops):
            trained[p.family, len(ops), i].add(op)
    for p in multi.heldout_comp:
        ops = p.metadata["structure"].split("+")
        assert all(op in trained[p.family, len(ops), i] for i, op in enumerate(ops)), p.id


def test_thoughts_are_one_line_per_part(multi):
    for p in _family(multi, "multibranch"):
        cases = p.metadata["structure"].count("+") + 2
        assert len(p.thoughts) == cases + 1, p.id  # one per case, then the style
        assert all("\n" not in t and len(t) <= 100 for t in p.thoughts), p.id
    for p in _family(multi, "module"):
        names = list(dict.fromkeys(t.fn_name for t in p.public_tests))
        assert [t.split("`")[1] for t in p.thoughts] == names, p.id
        assert all("\n" not in t and len(t) <= 240 for t in p.thoughts), p.id


def test_lengths(multi):
    """Measured tokens (BPE 1,024 trained on all eight families, seed 0, 1,000 tasks each):
    multibranch at most 247, module mean 243 and at most 344: module needs a context of 384."""
    stats = length_stats(_all(multi))
    print("\ntraining_text characters per family:", json.dumps(stats))
    assert stats["multibranch"]["max"] <= 900 and stats["module"]["max"] <= 1250, stats
