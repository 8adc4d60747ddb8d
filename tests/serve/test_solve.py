"""Best-of-n with verification, on a real (local) sandbox: which candidate wins, what is reported, and
the events a streaming client receives on the way."""

import asyncio

import pytest

from bdc_ray.customize import Completion
from bdc_ray.problems.types import AssertTest, CallTest, StdioTest
from bdc_ray.sandbox import Sandbox, SandboxLimits
from bdc_ray.serve.api import RoutingResponse, SolveRequest
from bdc_ray.serve.config import SolveSection
from bdc_ray.serve.solve import best_index, solve, solve_events, solve_job

ROUTING = RoutingResponse(problem_chars=1, experts=[], per_module={})
TESTS = [CallTest(fn_name="f", args=[2], expected=4), CallTest(fn_name="f", args=[3], expected=9),
         AssertTest(code="assert f(4) == 16")]
WRONG = "def f(x):\n    return x + 2\n"      # passes f(2) only
RIGHT = "def f(x):\n    return x * x\n"
BROKEN = "def f(x) return x\n"


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=SandboxLimits(time_s=2, program_time_s=8)) as sb:
        yield sb


def _candidates(codes):
    async def candidates(job):
        assert job.n == len(codes)
        for i, c in enumerate(codes):
            yield i, Completion(c, 1, "stop")
    return candidates


def _runner(sandbox, seen):
    async def run_one(code, tests):
        seen.append(code)
        return await asyncio.to_thread(sandbox.run, code, tests)
    return run_one


def _solve(body, codes, run_one, tests=TESTS):
    return asyncio.run(solve(body, body.problem, tests if body.tests else [], SolveSection(), _candidates(codes),
                             run_one, ROUTING))


def test_the_best_verified_candidate_wins_and_duplicates_run_once(sandbox):
    seen = []
    body = SolveRequest(problem="square x", tests=["assert f(4) == 16"], n=5)
    answer = _solve(body, [BROKEN, WRONG, RIGHT, WRONG, RIGHT], _runner(sandbox, seen))
    assert answer.code == RIGHT and answer.verified is True
    assert answer.test_results.status == "passed" and answer.test_results.passed == 3
    assert [c.status for c in answer.candidates] == ["error", "failed", "passed", "failed", "passed"]
    assert [c.passed for c in answer.candidates] == [0, 1, 3, 1, 3]
    assert sorted(seen) == sorted({BROKEN, WRONG, RIGHT})


def test_without_a_full_pass_the_most_passed_tests_win(sandbox):
    answer = _solve(SolveRequest(problem="p", tests=["assert f(4) == 16"], n=2), [BROKEN, WRONG], _runner(sandbox, []))
    assert answer.code == WRONG and answer.verified is False
    assert answer.test_results.first_failure.index == 1


def test_stdio_tests_and_no_tests():
    results = []
    with Sandbox(workers=1) as sb:
        body = SolveRequest(problem="echo", tests=[{"input": "hi\n", "output": "hi\n"}], n=1)
        answer = _solve(body, ["print(input())"], _runner(sb, results), [StdioTest(input="hi\n", output="hi\n")])
    assert answer.verified is True
    plain = _solve(SolveRequest(problem="p", n=2), [WRONG, RIGHT], _runner(None, results))
    assert plain.code == WRONG and plain.verified is None and [c.code for c in plain.candidates] == [WRONG, RIGHT]


def test_events_report_candidates_then_verdicts_then_the_answer(sandbox):
    body = SolveRequest(problem="square x", tests=["assert f(4) == 16"], n=3)

    async def run():
        return [e async for e in solve_events(body, body.problem, TESTS, SolveSection(),
                                              _candidates([WRONG, RIGHT, WRONG]), _runner(sandbox, []), ROUTING)]

    events = asyncio.run(run())
    names = [e.name for e in events]
    assert names[:3] == ["candidate"] * 3 and names[-1] == "result"
    assert sorted(e.data.index for e in events if e.name == "test_result") == [0, 1, 2]
    verdicts = {e.data.index: e.data.status for e in events if e.name == "test_result"}
    assert verdicts == {0: "failed", 1: "passed", 2: "failed"}
    assert events[-1].data.code == RIGHT and events[-1].data.verified is True


def test_best_index_prefers_full_passes_then_rate_then_order(sandbox):
    results = sandbox.run_many([(WRONG, TESTS), (RIGHT, TESTS), (RIGHT, TESTS), (BROKEN, TESTS)])
    assert best_index(results) == 1
    assert best_index([results[0], results[3]]) == 0


def test_solve_sampling_defaults():
    defaults = SolveSection(sample_temperature=0.7, max_tokens=99)
    one = solve_job("p", SolveRequest(problem="p"), defaults)
    assert one.sampling.greedy and one.sampling.max_new_tokens == 99 and one.n == 1
    many = solve_job("p", SolveRequest(problem="p", n=4, seed=5), defaults)
    assert many.sampling.temperature == 0.7 and many.rows == 4 and many.sampling.seed == 5
    assert many.prompt == "### Task\np\n### Solution\n" and many.routing_text == "p"
