"""The report's curves computed from trace records (the figures themselves are checked in test_build.py)."""

from bdc_ray.artifacts.traces import AnytimePoint, TraceRecord
from bdc_ray.report.plots import anytime_shares


def record(pid: str, generations: int, points: list[tuple[int, float, int]]) -> TraceRecord:
    """A trace with `generations` spent by one agent and its anytime list (generations, reward, prefix depth)."""
    reward = points[-1][1] if points else 0.0
    return TraceRecord(
        problem_id=pid, best_program="", best_reward=reward, best_thoughts=[], best_agent="a", evaluations=[],
        preferences=[], tree_size=1, tree_depth=0, rollouts=1, llm_generations={"a": generations}, sandbox_runs={},
        solved_public=reward >= 1.0, source="synthetic", family=None, difficulty=None, prompt="",
        public_pass_rate=reward, hidden_pass_rate=0.0, hidden_passed_all=False, hidden_status=None, wall_s=0.0,
        anytime=[AnytimePoint(generations=g, reward=r, agent="a", prefix_depth=d, program="") for g, r, d in points],
    )


def test_anytime_shares_count_each_problem_from_the_generation_it_was_solved():
    traces = [
        record("root", 4, [(1, 1.0, 0)]),                   # a plain sample, solved at the first generation
        record("tree", 6, [(2, 0.5, 0), (5, 1.0, 2)]),      # improved, then solved by a thought chain
        record("unsolved", 3, [(1, 0.5, 1)]),
    ]
    steps, solved, at_root = anytime_shares(traces)
    assert steps == list(range(7))  # up to the largest search
    third = 100 / 3
    assert solved == [0, third, third, third, third, 2 * third, 2 * third]
    assert at_root == [0, third, third, third, third, third, third]


def test_anytime_shares_of_no_traces_is_one_empty_step():
    assert anytime_shares([]) == ([0], [0.0], [0.0])
