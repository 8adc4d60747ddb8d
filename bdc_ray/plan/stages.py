"""Each stage of a config as work for a cluster: what it asks Ray for, how many at once, and how
long it takes given how many of those a cluster can hold at once.

Every request is the one the stage makes at start-up (tests/cluster checks them against the
functions the stages call); every time is work divided by a named throughput figure
(throughput.py), and the formula of each is written out in the plan beside its numbers:

- data: reference solutions / (sandbox programs/s per worker x sandbox workers);
- boost: per agent, problems x generations per problem x tokens per generation / (tokens/s x
  replicas); generations per problem are boost/cost.py's worst case (from the search config, the
  way search.py grants them) x the share a problem spends; tokens per generation are the typical
  length, capped by what the agent's requests allow. The slowest agent, or the sandbox if it is
  slower, sets the stage's time;
- disentangle: (K + 1) runs of steps x grad_accum x micro_batch_tokens / training tokens/s
  (per worker: data parallel workers each take their own micro batches), in waves of the runs
  that run at once;
- customize: trials x steps x tokens_per_step / training tokens/s, in waves of the trials at once
  (an upper bound: ASHA stops the trials that fall behind);
- eval: per (solver, split) task, problems x samples x max_new_tokens / generation tokens/s
  (transformers' generate runs each batch to its longest sample, for sampled programs often the
  cap), tasks spread over the slots that run at once, then the sandbox scores every sample;
- serve: a service, so no wall time: its replicas' GPUs per hour it is up.
GPU-hours are the GPUs held times the time they are held.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from pydantic import BaseModel

from bdc_ray.boost import PromptBook, worst_case_generations
from bdc_ray.config import BDCConfig
from bdc_ray.plan.throughput import Figure, Throughput
from bdc_ray.resources import ResourceSpec

HOUR = 3600.0


class Estimate(BaseModel):
    wall_s: float | None
    """None: the stage does not end (a service) or cannot start (nothing of it fits at once)."""
    gpu_hours: float
    formula: str
    gpu_hours_per_hour: tuple[float, float] | None = None
    """A service's GPUs (fewest, most replicas) per hour it is up."""


@dataclass(frozen=True)
class Demand:
    """One kind of actor, task, Train worker or Tune trial of a stage."""

    what: str
    key: str
    """The config key its resources come from."""
    each: ResourceSpec
    units: int
    """How many the stage asks for at once (after the config's own concurrency limits)."""
    how_many: str
    per_unit: int = 1
    """Bundles placed together: the workers of one Ray Train run."""


@dataclass(frozen=True)
class StageWork:
    name: str
    doc: str
    demands: list[Demand]
    estimate: Callable[[list[int]], Estimate]
    """Units placed at once, per demand -> the stage's time and GPU-hours."""


@dataclass(frozen=True)
class Counts:
    """The problems each stage works on."""

    boost: int
    splits: dict[str, int]
    references: int
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Role:
    """What of an agent decides its generations (boost/cost.py's Role)."""

    name: str
    continues: bool
    refines: bool


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _per_s(figure: Figure) -> str:
    return f"{_num(figure.value)}/s"


def _held_gpus(demands: list[Demand], placed: list[int]) -> float:
    return sum(d.each.num_gpus * d.per_unit * n for d, n in zip(demands, placed))


def makespan(durations: list[float], slots: int) -> float:
    """Longest-first onto the slot that frees first: how long tasks take with `slots` at once."""
    ends = [0.0] * max(1, slots)
    for duration in sorted(durations, reverse=True):
        ends[ends.index(min(ends))] += duration
    return max(ends)


def _student_is_tiny(cfg: BDCConfig) -> bool:
    """Whether the model the experts adapt (and the solvers run) is a tiny one: CPU figures differ."""
    if cfg.stages.disentangle.experts.base_model is not None:
        return False
    if cfg.models.student is not None:
        return cfg.models.student.tiny is not None
    return bool(cfg.models.agents) and cfg.models.agents[0].tiny is not None


def _generation(fig: Throughput, spec: ResourceSpec, tiny: bool) -> Figure:
    if spec.num_gpus > 0:
        return fig.hf_generation_gpu
    return fig.tiny_generation_cpu if tiny else fig.model_generation_cpu


def _training(fig: Throughput, spec: ResourceSpec, tiny: bool) -> Figure:
    if spec.num_gpus > 0:
        return fig.lora_training_gpu
    return fig.tiny_training_cpu if tiny else fig.model_training_cpu


def sandbox_demand(cfg: BDCConfig, purpose: str) -> Demand:
    actors = cfg.sandbox.actors
    how = f"{actors} actors" if actors else "one per node (counted as 1)"
    return Demand(f"sandbox actor ({purpose})", "resources.sandbox", cfg.resources.sandbox, actors or 1,
                  f"{how} x {cfg.sandbox.workers_per_actor} workers")


def _sandbox_s(cfg: BDCConfig, fig: Throughput, programs: float, actors: int) -> tuple[float | None, str]:
    workers = actors * cfg.sandbox.workers_per_actor
    if not workers:
        return None, "no sandbox actor fits at once"
    return programs / (fig.sandbox_runs_per_worker.value * workers), (
        f"{_num(programs)} programs / ({_per_s(fig.sandbox_runs_per_worker)} x {workers} sandbox workers)")


def data_stage(cfg: BDCConfig, fig: Throughput, counts: Counts) -> StageWork:
    demands = [sandbox_demand(cfg, "reference checks")]

    def estimate(placed: list[int]) -> Estimate:
        wall, formula = _sandbox_s(cfg, fig, counts.references, placed[0])
        return Estimate(wall_s=wall, gpu_hours=_held_gpus(demands, placed) * (wall or 0) / HOUR,
                        formula=f"reference solutions: {formula}")

    return StageWork("data", "synthetic suite + every reference solution through the sandbox", demands, estimate)


def _agent_figure(fig: Throughput, agent) -> Figure:
    backend = agent.model.backend if agent.model is not None else "transformers"
    if backend == "vllm":
        return fig.vllm_generation_gpu
    if backend == "openai":
        return fig.openai_generation
    return _generation(fig, agent.resources, agent.tiny is not None)


def boost_stage(cfg: BDCConfig, fig: Throughput, counts: Counts) -> StageWork:
    agents = cfg.models.agents
    search = cfg.stages.boost.search
    demands = [
        Demand(f"replica of agent {a.name}", f"models.agents.{i}.resources", a.resources, a.replicas,
               f"{a.replicas} replica(s)")
        for i, a in enumerate(agents)
    ] + [sandbox_demand(cfg, "rewards")]
    books = {a.name: PromptBook(style=a.style, **a.prompts.model_dump()) for a in agents}
    worst = worst_case_generations(search, [Role(a.name, books[a.name].continues, books[a.name].reads_instructions)
                                            for a in agents])
    share = fig.boost_spent_share.value
    thought, program = fig.thought_tokens.value, fig.program_tokens.value
    typical = {"thought": thought, "refine": thought, "program": program, "continuation": thought + program}
    tokens = {
        a.name: share * sum(n * min(typical[kind], books[a.name].max_new_tokens()[kind]) for kind, n in worst[a.name].items())
        for a in agents
    }
    generations = share * sum(sum(kinds.values()) for kinds in worst.values())
    programs = share * sum(kinds["program"] + kinds["continuation"] for kinds in worst.values())
    problems = counts.boost

    def estimate(placed: list[int]) -> Estimate:
        times, parts = [], []
        for a, replicas in zip(agents, placed):
            rate = _agent_figure(fig, a)
            times.append(problems * tokens[a.name] / (rate.value * replicas) if replicas else None)
            parts.append(f"{a.name}: {_num(problems)} x {_num(tokens[a.name])} tokens / ({_per_s(rate)} x {replicas})")
        sandbox, sandbox_formula = _sandbox_s(cfg, fig, problems * programs, placed[-1])
        times.append(sandbox)
        wall = None if None in times else max(times, default=0.0)
        head = (f"{_num(problems)} problems x {_num(generations)} generations/problem ({share:g} of the worst case "
                f"{_num(generations / share)}: rollouts {search.rollouts}, width {search.width}, n_sim {search.n_sim}, "
                f"{len(agents)} agents)")
        return Estimate(wall_s=wall, gpu_hours=_held_gpus(demands, placed) * (wall or 0) / HOUR,
                        formula="; ".join([head, *parts, f"sandbox: {sandbox_formula}"]))

    return StageWork("boost", "MC-Tree-of-Agents over the training problems", demands, estimate)


def _at_once(limit: int | None, total: int, key: str, fitted: int | None) -> tuple[int, str]:
    """Units asked for at once and why: the config's limit, else what fits at the start."""
    if limit is not None:
        return min(limit, total), f"{key} {limit}"
    if fitted is not None:
        return min(fitted, total), f"{key} null: what the cluster holds when the stage starts"
    return total, f"{key} null: all at once (no cluster file)"


def disentangle_stage(cfg: BDCConfig, fig: Throughput, start: dict[str, float] | None) -> StageWork:
    section = cfg.stages.disentangle
    experts, scaling = section.experts, section.experts.scaling
    k = section.cluster.k or section.cluster.k_max
    runs = k + 1
    fitted = None if start is None else scaling.runs_that_fit(start)
    at_once, why = _at_once(scaling.max_concurrent_runs, runs, "max_concurrent_runs", fitted)
    worker = ResourceSpec.from_bundle(scaling.worker_resources())
    chosen = f"K {k}" + (" (k_max; the silhouette chooses)" if section.cluster.k is None else "")
    demands = [Demand("Ray Train worker of an expert run", "stages.disentangle.experts.scaling.resources_per_worker",
                      worker, at_once, f"{runs} runs ({chosen} + all-data) x {scaling.num_workers} worker(s), "
                      f"{at_once} at once ({why})", per_unit=scaling.num_workers)]
    rate = _training(fig, worker, _student_is_tiny(cfg))
    run_tokens = experts.steps * experts.grad_accum * experts.micro_batch_tokens
    run_s = run_tokens / rate.value

    def estimate(placed: list[int]) -> Estimate:
        waves = math.ceil(runs / placed[0]) if placed[0] else None
        gpu_hours = runs * scaling.num_workers * worker.num_gpus * run_s / HOUR
        formula = (f"{runs} runs x {experts.steps} steps x {experts.grad_accum} grad_accum x "
                   f"{experts.micro_batch_tokens} tokens / {_per_s(rate)} per worker = {_num(run_s)} s a run, "
                   f"{waves} wave(s) of {placed[0]}")
        return Estimate(wall_s=waves * run_s if waves else None, gpu_hours=gpu_hours, formula=formula)

    return StageWork("disentangle", "clusters of the SFT problems and one LoRA expert per cluster", demands, estimate)


def customize_stage(cfg: BDCConfig, fig: Throughput) -> StageWork:
    section = cfg.stages.customize
    search, train = section.search, section.train
    step_tokens = train.steps * train.tokens_per_step
    tiny = _student_is_tiny(cfg)
    if not section.tune:
        rate = _training(fig, ResourceSpec(num_gpus=0), tiny)
        wall = step_tokens / rate.value
        return StageWork("customize", "one hypernetwork training, in the driver (tune: false)", [],
                         lambda placed: Estimate(wall_s=wall, gpu_hours=0.0, formula=(
                             f"{train.steps} steps x {train.tokens_per_step} tokens / {_per_s(rate)} in the driver")))
    trials = search.num_samples
    at_once, why = _at_once(search.max_concurrent_trials, trials, "max_concurrent_trials", None)
    trial = ResourceSpec.from_bundle(search.trial_resources())
    demands = [Demand("Ray Tune trial", "stages.customize.search (cpus_per_trial, gpus_per_trial, "
                      "custom_resources_per_trial)", trial, at_once, f"{trials} trials, {at_once} at once ({why})")]
    rate = _training(fig, trial, tiny)
    trial_s = step_tokens / rate.value

    def estimate(placed: list[int]) -> Estimate:
        waves = math.ceil(trials / placed[0]) if placed[0] else None
        formula = (f"{trials} trials x {train.steps} steps x {train.tokens_per_step} tokens / {_per_s(rate)} = "
                   f"{_num(trial_s)} s a trial, {waves} wave(s) of {placed[0]} (at most: ASHA stops trials early)")
        return Estimate(wall_s=waves * trial_s if waves else None,
                        gpu_hours=trials * trial.num_gpus * trial_s / HOUR, formula=formula)

    return StageWork("customize", "the input-aware hypernetwork over the experts (Ray Tune)", demands, estimate)


def eval_stage(cfg: BDCConfig, fig: Throughput, counts: Counts) -> StageWork:
    section = cfg.stages.eval
    # Teachers are measured too when their weights are local (tiny or transformers agents).
    teachers = [a.name for a in cfg.models.agents
                if section.teachers and (a.tiny is not None or (a.model is not None and a.model.backend == "transformers"))]
    solvers = [*section.solvers, *teachers]
    tasks = [(solver, split) for solver in solvers for split in section.splits]
    demands = [
        Demand("held-out generation task", "stages.eval.resources", section.resources, len(tasks),
               f"{len(solvers)} solvers{f' ({len(teachers)} teachers)' if teachers else ''} x {len(section.splits)} splits"),
        sandbox_demand(cfg, "scoring"),
    ]
    rate = _generation(fig, section.resources, _student_is_tiny(cfg))
    durations = [counts.splits[split] * section.samples * section.max_new_tokens / rate.value for _, split in tasks]
    samples = sum(counts.splits[split] * section.samples for _, split in tasks)

    def estimate(placed: list[int]) -> Estimate:
        generation = makespan(durations, placed[0]) if placed[0] else None
        scoring, scoring_formula = _sandbox_s(cfg, fig, samples, placed[1])
        wall = None if generation is None or scoring is None else generation + scoring
        sizes = ", ".join(f"{split} {counts.splits[split]:,}" for split in section.splits)
        formula = (f"each task: problems ({sizes}) x {section.samples} samples x {section.max_new_tokens} "
                   f"max_new_tokens / {_per_s(rate)}; {len(tasks)} tasks on {placed[0]} at once; "
                   f"scoring: {scoring_formula}")
        return Estimate(wall_s=wall, gpu_hours=section.resources.num_gpus * sum(durations) / HOUR, formula=formula)

    return StageWork("eval", "the student's solvers (and local teachers) on held-out problems", demands, estimate)


def serve_stage(cfg: BDCConfig) -> StageWork:
    scaling = cfg.serve.autoscaling
    demands = [Demand("Serve replica", "serve.resources", cfg.serve.resources, scaling.max_replicas,
                      f"{scaling.min_replicas}-{scaling.max_replicas} replicas (autoscaling)")]

    def estimate(placed: list[int]) -> Estimate:
        gpus = cfg.serve.resources.num_gpus
        low, high = scaling.min_replicas * gpus, min(placed[0], scaling.max_replicas) * gpus
        return Estimate(wall_s=None, gpu_hours=0.0, gpu_hours_per_hour=(low, high),
                        formula=f"a service: {low:g}-{high:g} GPU-hours per hour it is up")

    return StageWork("serve", "the customized solver on Ray Serve", demands, estimate)


def stage_works(cfg: BDCConfig, fig: Throughput, counts: Counts, start: dict[str, float] | None) -> list[StageWork]:
    """Every stage of `bdc run` that asks Ray for something, in order (report only reads files)."""
    return [
        data_stage(cfg, fig, counts),
        boost_stage(cfg, fig, counts),
        disentangle_stage(cfg, fig, start),
        customize_stage(cfg, fig),
        eval_stage(cfg, fig, counts),
        serve_stage(cfg),
    ]
