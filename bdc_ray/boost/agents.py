"""Agents for the tree search: a prompt book over something that generates text.

`generate` is any async callable `(prompts, sampling) -> texts`; the Ray runner passes one that
calls an `LLMActor` (batched, restartable), tests may pass a local backend's `agenerate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Sequence

from bdc_ray.boost.interfaces import Continuation, Proposal
from bdc_ray.boost.prompts import PromptBook
from bdc_ray.llm.base import SamplingParams, Texts
from bdc_ray.problems.types import Problem

GenerateFn = Callable[[list[str], SamplingParams], Awaitable[Texts]]


@dataclass
class LLMAgent:
    name: str
    generate: GenerateFn
    book: PromptBook

    @property
    def continues(self) -> bool:
        return self.book.continues

    @property
    def refines(self) -> bool:
        return self.book.reads_instructions

    @property
    def merges(self) -> bool:
        return self.book.reads_instructions

    async def propose(self, problem: Problem, thoughts: Sequence[str], width: int) -> list[Proposal]:
        req = self.book.propose(problem, thoughts, width)
        texts = await self.generate(req.prompts, req.sampling)
        return self.book.parse_proposals(texts[0], width)

    async def write_code(self, problem: Problem, thoughts: Sequence[str], n: int) -> list[str]:
        req = self.book.code(problem, thoughts, n)
        texts = await self.generate(req.prompts, req.sampling)
        return [self.book.parse_code(t) for t in texts[0]]

    async def continue_from(self, problem: Problem, thoughts: Sequence[str], n: int) -> list[Continuation]:
        req = self.book.code(problem, thoughts, n)
        texts = await self.generate(req.prompts, req.sampling)
        return [self.book.parse_continuation(t) for t in texts[0]]

    async def refine(self, problem: Problem, thoughts: Sequence[str], thought: str, feedback: str) -> Proposal | None:
        req = self.book.refine(problem, thoughts, thought, feedback)
        texts = await self.generate(req.prompts, req.sampling)
        return self.book.parse_refinement(texts[0], thought)

    async def merge(self, problem: Problem, thoughts: Sequence[str], first: str, second: str) -> Proposal | None:
        req = self.book.merge(problem, thoughts, first, second)
        texts = await self.generate(req.prompts, req.sampling)
        return self.book.parse_merge(texts[0])
