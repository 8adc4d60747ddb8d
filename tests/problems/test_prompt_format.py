"""What a completion runs as: itself, or the fenced program of a reply that fences its code."""

from __future__ import annotations

from bdc_ray.problems.prompt_format import fenced_program, program_of

REPLY = (
    "The solution is as follows:\n```python\ndef build_score(v):\n    return v // 5\n```\n"
    "Output:\n```\n7\n```\nThis is efficient."
)


def test_a_plain_completion_runs_as_it_is() -> None:
    program = "# floor-divide by 5\ndef build_score(v):\n    return v // 5\n"
    assert fenced_program(program) is None
    assert program_of(program) == program


def test_a_fenced_reply_runs_as_its_longest_python_block() -> None:
    assert program_of(REPLY) == "def build_score(v):\n    return v // 5\n"
    compile(program_of(REPLY), "solution.py", "exec")
    # a reply cut off inside its block (max_new_tokens) still yields what it wrote
    assert program_of("Here:\n```python\ndef f():\n    return 1\n") == "def f():\n    return 1\n"
    # an empty block is no program: the reply runs as it is (and fails as it would)
    assert program_of("```python\n```") == "```python\n```"
