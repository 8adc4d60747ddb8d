"""The incremental decode loop: text released as it becomes certain, on the real demo solver: the
tokens of `model.generate`, rows leaving the batch, cancellation, per-row settings, seeds, logprobs."""

import pytest

from bdc_ray.problems.prompt_format import prompt_text
from bdc_ray.llm.base import SamplingParams
from bdc_ray.serve.decode import Cancel, Decoder, IncrementalText, RowSpec

PIECES = {1: b"ab", 2: b"c", 3: b"\n#", 4: b" x", 5: b"\xc3", 6: b"\xa9", 7: b"\n"}


def _bytes_decode(ids):
    """A byte-level tokenizer's decode: incomplete UTF-8 at the end comes out as U+FFFD."""
    return b"".join(PIECES[i] for i in ids).decode("utf-8", errors="replace")


def _feed(text: IncrementalText, ids) -> list[str]:
    out = []
    for i in ids:
        text.add(i)
        out.append(text.release())
    return out


def test_text_is_released_only_when_later_tokens_cannot_change_it():
    text = IncrementalText(_bytes_decode)
    assert _feed(text, [1, 5, 6, 2]) == ["ab", "", "é", "c"]  # half a character waits for its other half
    assert text.text == "abéc" and text.release(final=True) == ""


def test_a_stop_string_across_tokens_is_cut_and_never_released():
    text = IncrementalText(_bytes_decode, stop=["\n#"])
    assert _feed(text, [1, 7]) == ["ab", ""]  # "\n" may begin the stop string: held
    assert text.cut is None
    text.add(3)  # "\n\n#": the stop string starts at the second newline
    assert text.cut == 3 and text.text == "ab\n"
    assert text.release(final=True) == "\n" and text.released == "ab\n"


def test_a_held_prefix_that_is_not_a_stop_is_released_later():
    text = IncrementalText(_bytes_decode, stop=["\n#", " xyz"])
    assert _feed(text, [1, 4, 2]) == ["ab", "", " xc"]
    assert text.cut is None and text.release(final=True) == ""


def test_the_earliest_stop_string_wins_whatever_their_order():
    text = IncrementalText(_bytes_decode, stop=["c", "ab"])
    text.add(1)
    text.add(2)
    assert text.text == ""


@pytest.fixture(scope="module")
def solver(engine):
    return engine.solver


@pytest.fixture(scope="module")
def decoder(solver):
    return Decoder(solver.composed, solver.tokenizer, solver.stop_ids)


def _rows(solver, problems, **settings):
    return [RowSpec(solver.tokenizer(prompt_text(p))["input_ids"], **{"max_new_tokens": 120, **settings})
            for p in problems]


def _decode(decoder, solver, rows, problems, on_step=None):
    updates = []

    def collect(step):
        updates.extend(step)
        if on_step is not None:
            on_step(step)

    batch = decoder.batch()
    early = batch.join(list(range(len(rows))), rows, solver.routing(problems))
    if early:
        collect(early)
    while batch:
        batch.step(collect)
    stats = batch.stats
    done = {u.row: u.done for u in updates if u.done is not None}
    streamed = {i: "".join(u.text for u in updates if u.row == i) for i in done}
    return [done[i] for i in range(len(rows))], streamed, stats


def test_greedy_rows_are_the_tokens_of_generate_and_leave_the_batch_when_done(decoder, solver, demo):
    problems = [p.prompt for p in demo.problems]
    reference, _ = solver.complete_prompts([prompt_text(p) for p in problems], problems, SamplingParams(max_new_tokens=120))
    done, streamed, stats = _decode(decoder, solver, _rows(solver, problems), problems)
    assert [d.text for d in done] == [r[0].text for r in reference]
    assert [d.tokens for d in done] == [r[0].tokens for r in reference]
    assert [d.finish_reason for d in done] == [r[0].finish_reason for r in reference] == ["stop"] * len(problems)
    assert streamed == {i: d.text for i, d in enumerate(done)}  # the stream adds up to the answer
    lengths = sorted(d.tokens for d in done)
    # Each row was in exactly as many forwards as it has tokens: finished rows left the batch.
    assert stats.steps == lengths[-1] and stats.row_steps == sum(lengths) < stats.steps * len(problems)


def test_rows_keep_their_own_settings_in_one_batch(decoder, solver, demo):
    problems = [p.prompt for p in demo.problems[:3]]
    base = _rows(solver, problems)
    rows = [base[0], RowSpec(base[1].prompt_ids, max_new_tokens=5), RowSpec(base[2].prompt_ids, 120, stop=("\n",))]
    done, streamed, _ = _decode(decoder, solver, rows, problems)
    alone = [_decode(decoder, solver, [row], [p])[0][0] for row, p in zip(rows, problems)]
    assert done == alone
    assert done[1].tokens == 5 and done[1].finish_reason == "length"
    assert "\n" not in done[2].text and done[2].finish_reason == "stop" and streamed[2] == done[2].text
    unstopped = _decode(decoder, solver, [base[2]], problems[2:])[0][0].text
    assert unstopped.startswith(done[2].text + "\n")


def test_a_cancelled_row_leaves_at_once_and_the_others_finish(decoder, solver, demo):
    problems = [p.prompt for p in demo.problems[:3]]
    cancel = Cancel()
    rows = _rows(solver, problems)
    rows[1] = RowSpec(rows[1].prompt_ids, 120, cancel=cancel)
    seen = {"tokens": 0}

    def client_goes_after_five_pieces(step):
        seen["tokens"] += sum(1 for u in step if u.row == 1 and u.done is None)
        if seen["tokens"] == 5:
            cancel.set()

    done, _, stats = _decode(decoder, solver, rows, problems, client_goes_after_five_pieces)
    assert done[1].finish_reason == "cancelled" and done[1].tokens == 5
    assert [(c.row, c.tokens, c.tokens_after_cancel) for c in stats.cancelled] == [(1, 5, 0)]
    others = _decode(decoder, solver, [rows[0], rows[2]], [problems[0], problems[2]])[0]
    assert [done[0], done[2]] == others
    assert done[0].tokens > 5 and done[2].tokens > 5


def test_rows_cancelled_before_the_start_never_run(decoder, solver, demo):
    cancel = Cancel()
    cancel.set()
    problems = [demo.problems[0].prompt]
    done, _, stats = _decode(decoder, solver, [RowSpec(_rows(solver, problems)[0].prompt_ids, 50, cancel=cancel)],
                             problems)
    assert done[0].finish_reason == "cancelled" and done[0].tokens == 0 and stats.steps == 0


def test_seeded_rows_depend_on_their_seed_not_on_their_batch(decoder, solver, demo):
    problems = [p.prompt for p in demo.problems[:3]]
    ids = _rows(solver, problems)

    def sampled(seed, i):
        return RowSpec(ids[i].prompt_ids, 40, temperature=1.5, top_p=0.9, seed=seed)

    together = _decode(decoder, solver, [sampled(1, 0), sampled(2, 0), sampled(5, 1)], [problems[0]] * 2 + [problems[1]])[0]
    alone = _decode(decoder, solver, [sampled(1, 0)], problems[:1])[0]
    again = _decode(decoder, solver, [sampled(7, 2), sampled(1, 0)], [problems[2], problems[0]])[0]
    assert together[0] == alone[0] == again[1]
    assert together[0].text != together[1].text


def test_logprobs_cover_the_text_token_by_token(decoder, solver, demo):
    problems = [demo.problems[0].prompt]
    row = RowSpec(_rows(solver, problems)[0].prompt_ids, 30, logprobs=3)
    done = _decode(decoder, solver, [row], problems)[0][0]
    entries = done.logprobs
    assert len(entries) == done.tokens - (done.finish_reason == "stop")  # the end-of-text token has no text
    assert "".join(e.token for e in entries) == done.text
    for e in entries:
        assert e.logprob <= 0 and len(e.top) == 3
        assert [lp for _, lp in e.top] == sorted((lp for _, lp in e.top), reverse=True)
        assert e.top[0] == (e.token, e.logprob)  # greedy: the likeliest token is the one chosen


def test_rows_join_a_running_batch_and_decode_as_they_would_alone(decoder, solver, demo):
    problems = [p.prompt for p in demo.problems]
    first, later = problems[:2], problems[2:5]
    batch = decoder.batch()
    updates = []
    batch.join([0, 1], _rows(solver, first), solver.routing(first))
    for _ in range(7):  # seven tokens in, the other three join
        batch.step(updates.extend)
    batch.join([2, 3, 4], _rows(solver, later), solver.routing(later))
    assert len(batch) == 5
    while batch:
        batch.step(updates.extend)
    done = {u.row: u.done for u in updates if u.done is not None}
    alone = _decode(decoder, solver, _rows(solver, problems[:5]), problems[:5])[0]
    assert [done[i] for i in range(5)] == alone
    assert batch.stats.joined_running == 1 and batch.stats.prefills == 2 and batch.stats.max_running == 5
