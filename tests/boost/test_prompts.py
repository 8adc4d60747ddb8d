"""Prompt books and parsers, on real bad outputs of tiny models and on typical LLM mistakes."""

import ast

import pytest

from bdc_ray.boost.interfaces import Proposal
from bdc_ray.boost.prompts import (
    PromptBook,
    consensus_proposals,
    describe_problem,
    extract_code,
    loads_lenient,
    parse_proposals_json,
)
from bdc_ray.problems.synth import SynthConfig, format_prompt, generate_suite

# Verbatim outputs of a barely trained tiny model (2 layers, 60 steps) to the prompts below:
# control characters, U+FFFD, no fences, no JSON, code and prose interleaved.
TINY_PROPOSALS = ["one r in =, string 6.# step For takeco:0", "so 6 First ing keptacis Bpoun((ints ch the is",
                  "\ufffdline in in return string if in the first  nothing then "]
TINY_REFINES = ["letderoutput:output\u0007acdUpeach intsesc\ufffdthen 1uilds in", "so  First , string6ar step multake  2 so all ti",
                "\ufffdr.", "it !cingreturn is ch \u0005For  in Then ,  k ="]
TINY_INSTRUCT_REPLY = ("\n# it.\ndef er and in the v = string returnreturn the stringacrepmultiply re/ if B chp kept so string in One "
                       "intsfirst Then take  ha):):s  if m in Then One 1# , return 1\n     solve_  step kin if in  ( add the .\ndefc\n")
TINY_INSTRUCT_PROPOSAL = "one ge d a er return in the v = string return v it acrep is 6 in B chp kept one string in One intsfirst"
# Verbatim samples of the default tiny-a (seed 0, 750 steps) for the code prompt of the problem
# below, T=0.8, 96 tokens, stop "### Task": the first cut off by the token limit mid-line.
TINY_CONTINUATIONS = [
    '# First keep at most the first 3 characters.\n# Then keep positions 0, 3, 6 and so on (a step of 3).\n# Build each '
    'new string in a loop, one character at a time.\ndef compute_step(st):\n    t = ""\n    for i in range(min(4, len(st))):'
    '\n        t += st[i]\n    out = ""\n    for i in range(0, len(t),',
    "# Then keep positions 0, 3, 6 and so on (a step of 3).\n# Chain slicing and string methods in one return.\n"
    "def compute_step(st):\n    return st[::3][::4]\n",
]


@pytest.fixture(scope="module")
def problem():
    return generate_suite(SynthConfig(seed=3, train_per_family=1, heldout_per_family=0, heldout_comp_per_family=0)).train[1]


def test_completion_style_uses_the_training_format(problem):
    book = PromptBook(style="completion")
    req = book.propose(problem, ["First step."], 3)
    assert req.prompts == [format_prompt(problem) + "# First step.\n# "]
    assert req.sampling.n == 3 and req.sampling.stop == ["\n"]
    code = book.code(problem, ["First step."], 2)
    assert code.prompts[0].endswith("# First step.\n") and code.sampling.n == 2


def test_consensus_prior_is_the_share_of_agreeing_samples():
    props = consensus_proposals(["Double it.", "# Double it.", "Add one", "  "], 3)
    assert props[0] == Proposal("Double it.", 0.5) and props[1] == Proposal("Add one", 0.25)


def test_real_tiny_outputs_parse_without_errors(problem):
    book = PromptBook(style="completion")
    props = book.parse_proposals(TINY_PROPOSALS, 3)
    assert len(props) == 3 and all(0 < p.prior <= 1 and "\n" not in p.text for p in props)
    assert book.parse_code("") == ""
    for junk in TINY_REFINES:
        sample = book.parse_continuation(junk)
        assert sample.thought is None and sample.program == junk.strip("\n") + "\n"
    instruct = PromptBook(style="instruct")
    # No JSON and no list markers: no proposal, rather than garbage with a made-up confidence.
    assert instruct.parse_proposals([TINY_INSTRUCT_PROPOSAL], 3) == []
    assert instruct.parse_refinement([TINY_INSTRUCT_PROPOSAL], "x") is None
    code = instruct.parse_code(TINY_INSTRUCT_REPLY)
    assert code.startswith("def er and")  # from the first line that looks like code


def test_a_completion_sample_is_the_next_thought_and_the_program_after_it(problem):
    book = PromptBook(style="completion")
    assert book.continues and not book.reads_instructions
    first = book.parse_continuation(TINY_CONTINUATIONS[0])
    assert first.thought == "First keep at most the first 3 characters."
    assert first.program.startswith("# Then keep positions 0, 3, 6") and "def compute_step(st):" in first.program
    assert book.parse_continuation(TINY_CONTINUATIONS[1]).program == "# Chain slicing and string methods in one return.\n" \
        "def compute_step(st):\n    return st[::3][::4]\n"
    straight = book.parse_continuation("\ndef f(x):\n    return x\n")
    assert straight.thought is None and straight.program == "def f(x):\n    return x\n"
    assert book.parse_continuation("#   \nprint(1)").thought is None  # an empty comment is no thought
    assert book.parse_continuation("# Only a thought").program == ""
    with pytest.raises(ValueError, match="cannot read feedback"):
        book.refine(problem, [], "a", "Status: failed.")
    with pytest.raises(ValueError, match="never taught to merge"):
        book.merge(problem, [], "a", "b")
    instruct = PromptBook(style="instruct")
    assert instruct.reads_instructions and not instruct.continues
    with pytest.raises(ValueError, match="do not continue"):
        instruct.parse_continuation("# x\ncode")


@pytest.mark.parametrize(
    "reply, expected",
    [
        ('[{"thought": "Sort the list", "confidence": 0.9}, {"thought": "Sum it", "confidence": 0.4}]',
         [("Sort the list", 0.9), ("Sum it", 0.4)]),
        ("Sure! Here you go:\n```json\n[{'thought': 'Use a dict', 'confidence': 85,},]\n```\nHope it helps",
         [("Use a dict", 0.85)]),
        ('{"steps": [{"step": "Read n", "score": "0.7"}, {"text": "Loop n times"}]}', [("Read n", 0.7), ("Loop n times", 0.5)]),
        ('["Split on spaces", "Count words"]', [("Split on spaces", 0.5), ("Count words", 0.5)]),
        ("1. Parse the input\n2) Reverse it\n- Print", [("Parse the input", 0.5), ("Reverse it", 0.5), ("Print", 0.5)]),
        ('[{"thought": "Bad confidence", "confidence": -3}, {"thought": "", "confidence": 1}]', [("Bad confidence", 0.5)]),
        # a reply cut off by max_tokens: the complete first object is still recovered
        ('[{"thought": "Truncated JSON", "confidence": 0.8}, {"thought": "cut off', [("Truncated JSON", 0.8)]),
    ],
)
def test_instruct_proposals_survive_malformed_json(reply, expected):
    got = parse_proposals_json(reply, 5, 0.5)
    assert [(p.text, p.prior) for p in got] == expected


@pytest.mark.parametrize(
    "reply, first_line",
    [
        ("Here is the code:\n```python\ndef f(x):\n    return x\n```\nDone.", "def f(x):"),
        ("```\nimport sys\nprint(sys.stdin.read())\n```", "import sys"),
        ("```py\ndef g():\n    pass\n", "def g():"),  # unterminated fence
        ("I think we should loop.\ndef h(xs):\n    return sum(xs)\n", "def h(xs):"),
        ("```text\nnot code\n```\n```python\ndef longer():\n    return 1\n```", "def longer():"),
    ],
)
def test_code_extraction(reply, first_line):
    code = extract_code(reply)
    assert code.splitlines()[0] == first_line
    ast.parse(code)


def test_lenient_json_gives_none_on_prose():
    assert loads_lenient("no json here at all") is None
    assert loads_lenient("prefix {'a': True, 'b': None,} suffix") == {"a": True, "b": None}


def test_instruct_prompts_show_only_public_examples(problem):
    text = describe_problem(problem, examples=10)
    for t in problem.hidden_tests:
        assert repr(t.args[0]) not in text or any(repr(t.args[0]) == repr(p.args[0]) for p in problem.public_tests)
    refine = PromptBook(style="instruct").refine(problem, ["a"], "b", "Status: failed.\nInput: [1]")
    assert "Status: failed." in refine.prompts[0] and "JSON" in refine.prompts[0]


def test_merge_prompts(problem):
    book = PromptBook(style="instruct")
    req = book.merge(problem, ["x"], "Sort ascending", "Sort in ascending order")
    assert "A: Sort ascending" in req.prompts[0] and req.sampling.temperature == 0.0
    assert book.parse_merge(['{"thought": "Sort ascending", "confidence": 0.9}']) == Proposal("Sort ascending", 0.9)
    assert book.parse_merge(["no idea"]) is None
