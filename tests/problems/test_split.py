import pytest

from bdc_ray.problems.split import split_tests


def test_split_is_pinned_across_machines_and_runs():
    # A golden value: the split must never change silently, or stored results stop matching.
    assert split_tests("HumanEval/0", list(range(10))) == ([0, 3, 5, 6, 7], [1, 2, 4, 8, 9])


def test_split_depends_only_on_id_and_index():
    numbers = split_tests("apps/42", [10, 20, 30, 40, 50])
    letters = split_tests("apps/42", list("abcde"))
    assert [[n // 10 - 1 for n in side] for side in numbers] == [["abcde".index(c) for c in side] for side in letters]
    assert split_tests("apps/42", [10, 20, 30, 40, 50]) == numbers


@pytest.mark.parametrize("n", range(2, 25))
def test_two_or_more_tests_give_each_side_at_least_one(n):
    for problem_id in ("1", "HumanEval/7", "Sorting Andi and Budi Books Problem"):
        tests = list(range(n))
        public, hidden = split_tests(problem_id, tests)
        assert public and hidden
        assert sorted(public + hidden) == tests
        assert public == sorted(public) and hidden == sorted(hidden)
        assert len(public) == min(n - 1, max(1, round(n * 0.5)))


def test_a_single_test_is_hidden_and_no_tests_give_nothing():
    assert split_tests("x", ["only"]) == ([], ["only"])
    assert split_tests("x", []) == ([], [])


def test_ids_give_different_splits():
    splits = {tuple(split_tests(str(i), list(range(6)))[0]) for i in range(50)}
    assert len(splits) > 5


def test_public_fraction():
    public, hidden = split_tests("p", list(range(10)), public_fraction=0.2)
    assert (len(public), len(hidden)) == (2, 8)
    for bad in (0.0, 1.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="public_fraction"):
            split_tests("p", [1, 2], public_fraction=bad)
