"""Resource limits of one sandboxed run, validated once where they enter the system."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Isolation = Literal["auto", "required", "off"]
Seconds = Annotated[float, Field(gt=0, le=3600)]

BENCHMARK_TIME_S = {"apps": 10.0, "codecontests": 10.0, "humaneval": 10.0, "mbpp": 10.0}
"""Per-test limits of the public benchmarks, at the top of what their own harnesses allow
(APPS and CodeContests 4-10 s per test, HumanEval and MBPP 3-10 s): these machines are
shared and slow, MBPP task 123 alone takes about 8 s, and a HumanEval test is the whole
`check()`. A limit cut too fine turns a correct program into a silent failure."""


class SandboxLimits(BaseModel):
    """Limits for running one program against its tests.

    `time_s` is the limit of a test without a listed source (the synthetic suite: short,
    so that a search wastes little on a looping program); tests of a public benchmark take
    theirs from `time_s_by_source`, keyed by `Test.source`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    time_s: float = Field(4.0, gt=0, le=3600, description="Wall-clock and CPU-time limit of one test, in seconds.")
    time_s_by_source: dict[str, Seconds] = Field(
        default_factory=lambda: dict(BENCHMARK_TIME_S),
        description=(
            "Per-test wall-clock and CPU-time limit, in seconds, for the tests of each benchmark (Test.source); "
            "a source not listed gets time_s."
        ),
    )
    program_time_s: float = Field(
        30.0, gt=0, le=86400, description="Wall-clock budget for all tests of one run together, in seconds."
    )
    memory_mb: int = Field(
        512,
        ge=64,
        le=65536,
        description="Address-space limit (RLIMIT_AS) of each untrusted process in MiB, interpreter included.",
    )
    max_processes: int = Field(
        16,
        ge=1,
        le=4096,
        description="Processes plus threads the untrusted code may have at once (RLIMIT_NPROC of its uid).",
    )
    output_bytes: int = Field(
        1_000_000,
        ge=1024,
        le=1 << 30,
        description="Cap on each of stdout, stderr, a returned value and any file written; more is 'output-limit'.",
    )
    float_tol: float = Field(
        1e-6, ge=0, lt=1, description="Relative-or-absolute tolerance when both compared values are floats."
    )
    isolation: Isolation = Field(
        "auto",
        description=(
            "Namespace isolation of the pool: 'auto' uses it when the kernel allows and warns once "
            "otherwise, 'required' refuses to start without it, 'off' disables it. Fixed when the "
            "pool starts; a per-call value can only demand ('required') what the pool already has."
        ),
    )

    def time_for(self, source: str | None) -> float:
        """The per-test limit of a test from `source`."""
        return self.time_s_by_source.get(source, self.time_s) if source is not None else self.time_s

    @model_validator(mode="after")
    def _budget_covers_one_test(self) -> SandboxLimits:
        if self.program_time_s < self.time_s:
            raise ValueError(f"program_time_s ({self.program_time_s}) must be >= time_s ({self.time_s})")
        return self
