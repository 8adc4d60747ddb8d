"""THE prompt format: what precedes a model's output, and what it must write, in every stage.

    ### Task
    <problem statement>
    ### Solution
    # <thought>                 (one `#` comment line per thought)
    <program>

The tiny models were trained on exactly this text (problems/synth.py builds their data with it),
the LoRA experts and the hypernetwork train on it (artifacts SFTRow.prompt_response), and Boost's
completion-style agents, the held-out solvers and Serve prompt with it. One format everywhere means
a model never sees a prompt at inference that differs from the prompts it was trained on. Thoughts
are comments, so a model's whole output is a runnable program: nothing is parsed out before a test,
except from a reply that fences its code (an instruct model's habit, whatever it is asked), whose
fenced program is what runs (`program_of`).
"""

from __future__ import annotations

import re
from typing import Sequence

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.S)

TASK_HEADER = "### Task\n"
SOLUTION_HEADER = "### Solution\n"


def format_thoughts(thoughts: Sequence[str]) -> str:
    """Thoughts as one `#` comment line each."""
    for thought in thoughts:
        if "\n" in thought:
            raise ValueError(f"a thought must be one line: {thought!r}")
    return "".join(f"# {thought}\n" for thought in thoughts)


def prompt_text(problem: str, thoughts: Sequence[str] = ()) -> str:
    """What precedes the model's output for a problem statement; with thoughts, the model writes
    only the code that follows them (Boost's thought-to-solution step)."""
    return f"{TASK_HEADER}{problem}\n{SOLUTION_HEADER}" + format_thoughts(thoughts)


def response_text(thoughts: Sequence[str], code: str | None = None) -> str:
    """What the model writes after `prompt_text(problem)`: the thoughts, then the program (if any)."""
    return format_thoughts(thoughts) + (code or "")



def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every ``` block of a reply, the last one possibly unclosed."""
    return [(lang.lower(), body) for lang, body in _FENCE.findall(text)]


def fenced_program(text: str) -> str | None:
    """The longest python (or unlabelled) fenced block of a reply, else its longest block; None
    when nothing is fenced."""
    blocks = fenced_blocks(text)
    python = [body for lang, body in blocks if lang in ("python", "py", "python3", "")]
    if not (python or blocks):
        return None
    return max(python or [body for _, body in blocks], key=len).strip("\n") + "\n"


def program_of(completion: str) -> str:
    """What a completion runs as: itself, or the fenced program of a reply with prose around a
    ```python block (which as a whole would not compile)."""
    fenced = fenced_program(completion)
    return fenced if fenced and fenced.strip() else completion
