"""Prompt templates and robust parsers for the agents' jobs: propose, code, continue, refine, merge.

Two styles, because the agents differ in what they can read:
- `completion`: models trained on the synthetic suite's own text format (the tiny models).
  Thoughts are `# ` comment lines after `### Solution`, so one sampled continuation of a state
  is both a next thought (its first line) and a program that follows it; a bare proposal is one
  sampled line, its prior the share of samples that agree (self-consistency). Such a model
  cannot read feedback or instructions: it neither refines nor merges.
- `instruct`: chat/instruction models (7B-class, hosted APIs). Proposals come back as JSON
  with a stated confidence; refinement sees the execution feedback; near-duplicates can be merged.
Every parser accepts the malformed output real models produce (no fences, broken JSON, extra
prose) and degrades to a default instead of failing the search.
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from bdc_ray.boost.interfaces import Continuation, Proposal
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.prompt_format import fenced_blocks, fenced_program, program_of, prompt_text
from bdc_ray.problems.types import CallTest, Problem, StdioTest

Style = Literal["completion", "instruct"]


@dataclass(frozen=True)
class Request:
    prompts: list[str]
    sampling: SamplingParams


# --- shared parsing -------------------------------------------------------------------------

_CODE_START = re.compile(r"^(def |class |import |from |async def |@|if __name__|[A-Za-z_][A-Za-z0-9_]* *=|print\(|for |while )")


def extract_code(text: str) -> str:
    """The program in a model reply: the longest fenced block (python preferred), else the
    text from the first line that looks like code."""
    fenced = fenced_program(text)
    if fenced is not None:
        return fenced
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return text.strip("\n") + "\n" if text.strip() else ""
    return "\n".join(lines[start:]).strip("\n") + "\n"


def _json_candidates(text: str) -> list[str]:
    fenced = [body for _, body in fenced_blocks(text)]
    spans = []
    for open_, close in (("[", "]"), ("{", "}")):
        start, end = text.find(open_), text.rfind(close)
        if start != -1 and end > start:
            spans.append(text[start : end + 1])
    return fenced + spans


def loads_lenient(text: str) -> Any:
    """JSON from a model reply: fenced or bare, tolerating trailing commas, single quotes,
    Python literals (True/None) and prose around it. None when nothing parses."""
    for candidate in _json_candidates(text):
        cleaned = re.sub(r",\s*([\]}])", r"\1", candidate.strip())
        for parse in (json.loads, ast.literal_eval):
            try:
                return parse(cleaned)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
    return None


def _confidence(value: Any, default: float) -> float:
    try:
        c = float(value)
    except (TypeError, ValueError):
        return default
    if c > 1.0 and c <= 100.0:  # "85" meaning 85%
        c /= 100.0
    return c if 0.0 < c <= 1.0 else default


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def parse_proposals_json(text: str, width: int, default_prior: float) -> list[Proposal]:
    """`[{"thought": ..., "confidence": ...}]` (or a dict holding such a list, or strings);
    falls back to numbered / bulleted lines of the reply with the default prior."""
    data = loads_lenient(text)
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), [data])
    proposals: list[Proposal] = []
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict):
                thought = item.get("thought") or item.get("step") or item.get("clue") or item.get("text")
                conf = item.get("confidence", item.get("reasonableness", item.get("score")))
                if isinstance(thought, str) and thought.strip():
                    proposals.append(Proposal(_one_line(thought), _confidence(conf, default_prior)))
            elif isinstance(item, str) and item.strip():
                proposals.append(Proposal(_one_line(item), default_prior))
    if not proposals:
        for line in text.splitlines():
            m = re.match(r"^\s*(?:\d+[.)]|[-*•]|step \d+:)\s*(.+)$", line, re.I)
            if m and m.group(1).strip():
                proposals.append(Proposal(_one_line(m.group(1)), default_prior))
    return proposals[:width]


def consensus_proposals(samples: Sequence[str], width: int) -> list[Proposal]:
    """Distinct sampled lines, each with the share of samples that said it as its prior."""
    lines = [_one_line(s.split("\n", 1)[0]).lstrip("#").strip() for s in samples]
    counts = Counter(line for line in lines if line)
    total = max(len(samples), 1)
    return [Proposal(text, n / total) for text, n in counts.most_common(width)]


# --- problem presentation for instruction models -------------------------------------------


def describe_problem(problem: Problem, examples: int = 2) -> str:
    """Problem text plus starter code, the function to write and a few PUBLIC examples."""
    parts = [problem.prompt.strip()]
    if problem.starter_code.strip():
        parts.append("Starter code:\n```python\n" + problem.starter_code.strip("\n") + "\n```")
    shown = problem.public_tests[:examples]
    if any(isinstance(t, StdioTest) for t in shown):
        parts.append("Your program reads standard input and writes standard output.")
    for t in shown:
        if isinstance(t, StdioTest):
            parts.append(f"Example input:\n{t.input.rstrip()}\nExample output:\n{t.output.rstrip()}")
        elif isinstance(t, CallTest):
            args = ", ".join(repr(a) for a in t.args)
            parts.append(f"Example: {t.fn_name}({args}) == {t.expected!r}")
    return "\n\n".join(parts)


def _steps(thoughts: Sequence[str]) -> str:
    return "\n".join(f"Step {i}: {t}" for i, t in enumerate(thoughts, 1)) or "(none yet)"


# --- the two styles ---------------------------------------------------------------------------

INSTRUCT_THOUGHT_TOKENS = 64
"""New tokens an instruct proposal reply may spend per thought it is asked for (JSON and all)."""
INSTRUCT_CODE_FACTOR = 4
"""An instruct program reply may run to this many times `max_code_tokens` (prose and fences around the code)."""
REPLY_TOKENS = 96
"""New tokens of one refinement or merge reply (one JSON thought)."""



@dataclass(frozen=True)
class PromptBook:
    """Builds requests and parses replies for one agent."""

    style: Style = "completion"
    propose_temperature: float = 0.8
    code_temperature: float = 0.8
    refine_temperature: float = 1.0
    max_thought_tokens: int = 48
    max_code_tokens: int = 256
    default_prior: float = 0.5

    def propose(self, problem: Problem, thoughts: Sequence[str], width: int) -> Request:
        if self.style == "completion":
            prompt = prompt_text(problem.prompt, thoughts) + "# "
            return Request([prompt], self._sampling(width, self.propose_temperature, self.max_thought_tokens, ["\n"]))
        prompt = (
            "You are an expert Python programmer planning a solution step by step, without writing code yet.\n\n"
            f"Problem:\n{describe_problem(problem)}\n\nReasoning so far:\n{_steps(thoughts)}\n\n"
            f"Propose {width} different possible NEXT steps (one sentence each, no code). For each, give your "
            "confidence from 0 to 1 that it leads to a correct solution. Reply with JSON only:\n"
            '[{"thought": "...", "confidence": 0.8}, ...]'
        )
        return Request([prompt], self._sampling(1, self.propose_temperature, INSTRUCT_THOUGHT_TOKENS * width, []))

    def parse_proposals(self, texts: Sequence[str], width: int) -> list[Proposal]:
        if self.style == "completion":
            return consensus_proposals(texts, width)
        return parse_proposals_json(texts[0] if texts else "", width, self.default_prior)

    def code(self, problem: Problem, thoughts: Sequence[str], n: int) -> Request:
        if self.style == "completion":
            prompt = prompt_text(problem.prompt, thoughts)
            return Request([prompt], self._sampling(n, self.code_temperature, self.max_code_tokens, ["### Task"]))
        prompt = (
            "You are an expert Python programmer.\n\n"
            f"Problem:\n{describe_problem(problem)}\n\nFollow this plan:\n{_steps(thoughts)}\n\n"
            "Write the complete solution in one ```python code block."
        )
        return Request([prompt], self._sampling(n, self.code_temperature, self.max_code_tokens * INSTRUCT_CODE_FACTOR, []))

    def parse_code(self, text: str) -> str:
        if self.style == "completion":
            return program_of(text).strip("\n") + "\n" if text.strip() else ""
        return extract_code(text)

    def max_new_tokens(self) -> dict[str, int]:
        """The most new tokens one generation of each kind (the search's grant kinds) may take,
        as the requests above ask for them; `bdc plan` bounds its token estimates with these."""
        if self.style == "completion":
            thought, program = self.max_thought_tokens, self.max_code_tokens
        else:
            thought, program = INSTRUCT_THOUGHT_TOKENS, self.max_code_tokens * INSTRUCT_CODE_FACTOR
        return {"thought": thought, "program": program, "continuation": self.max_code_tokens,
                "refine": REPLY_TOKENS, "merge": REPLY_TOKENS}

    @property
    def continues(self) -> bool:
        """Whether a sampled program also carries its next thought (`code` prompts continue the state)."""
        return self.style == "completion"

    @property
    def reads_instructions(self) -> bool:
        """Whether the model can act on feedback and instructions (refine, merge)."""
        return self.style == "instruct"

    def parse_continuation(self, text: str) -> Continuation:
        """A completion-style sample of a `code` prompt: a first `#` line is the next thought and
        the rest is the program that follows it; a sample that starts with code has no thought."""
        if not self.continues:
            raise ValueError("instruct-style replies do not continue the state: propose and write code instead")
        body = text.lstrip("\n")
        first, _, rest = body.partition("\n")
        if first.startswith("#"):
            thought = _one_line(first.lstrip("#"))
            if thought:
                return Continuation(thought, self.parse_code(rest))
        return Continuation(None, self.parse_code(body))

    def refine(self, problem: Problem, thoughts: Sequence[str], thought: str, feedback: str) -> Request:
        if not self.reads_instructions:
            raise ValueError("completion-style models cannot read feedback: they do not refine")
        prompt = (
            "You are an expert Python programmer reviewing one step of a plan.\n\n"
            f"Problem:\n{describe_problem(problem)}\n\nReasoning so far:\n{_steps(thoughts)}\n\n"
            f"Proposed next step: {thought}\n\nA program written from this step failed:\n{feedback}\n\n"
            "Write a corrected version of the step (one sentence, no code) and your confidence from 0 to 1. "
            'Reply with JSON only: {"thought": "...", "confidence": 0.7}'
        )
        return Request([prompt], self._sampling(1, self.refine_temperature * 0.7, REPLY_TOKENS, []))

    def parse_refinement(self, texts: Sequence[str], rejected: str) -> Proposal | None:
        options = parse_proposals_json(texts[0] if texts else "", 1, self.default_prior)
        options = [p for p in options if p.text != rejected.strip()]
        return options[0] if options else None

    def merge(self, problem: Problem, thoughts: Sequence[str], first: str, second: str) -> Request:
        if not self.reads_instructions:
            raise ValueError("completion-style models were never taught to merge thoughts")
        prompt = (
            "You are an expert Python programmer planning a solution step by step.\n\n"
            f"Problem:\n{describe_problem(problem)}\n\nReasoning so far:\n{_steps(thoughts)}\n\n"
            f"Two candidate next steps say nearly the same thing:\nA: {first}\nB: {second}\n\n"
            "Write ONE next step (one sentence, no code) that keeps what is right in both, and your confidence "
            'from 0 to 1. Reply with JSON only: {"thought": "...", "confidence": 0.7}'
        )
        return Request([prompt], self._sampling(1, 0.0, REPLY_TOKENS, []))

    def parse_merge(self, texts: Sequence[str]) -> Proposal | None:
        options = parse_proposals_json(texts[0] if texts else "", 1, self.default_prior)
        return options[0] if options else None

    @staticmethod
    def _sampling(n: int, temperature: float, max_new_tokens: int, stop: list[str]) -> SamplingParams:
        return SamplingParams(n=n, temperature=temperature, max_new_tokens=max_new_tokens, stop=stop)
