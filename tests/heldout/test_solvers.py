"""Which stored held-out summaries a re-run may reuse: only those measured on the same weights,
problems and settings (the generation itself runs on Ray in the pipeline and job tests)."""

from __future__ import annotations

from bdc_ray import storage
from bdc_ray.artifacts.experts import ExpertManifest, TrainedAdapter, save_manifest
from bdc_ray.artifacts.hypernet import META_FILE
from bdc_ray.artifacts.layout import RunLayout
from bdc_ray.heldout.solvers import GENERATE_PHASE, LOAD_PHASE, generate_timed, measurement_key, solver_sources
from bdc_ray.llm.base import SamplingParams
from bdc_ray.problems.synth import SynthConfig, generate_suite

LORA = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj"]}


def _manifest(run: RunLayout, fingerprint: str) -> None:
    all_data = TrainedAdapter(name="all_data", path="/a", size=3, final_loss=0.1, steps=4, fingerprint=fingerprint)
    save_manifest(ExpertManifest(base_model="/base", lora=LORA, all_data=all_data), run.experts_dir)


def test_a_summary_is_reused_only_for_the_weights_problems_and_settings_it_measured(tmp_path):
    run = RunLayout(str(tmp_path / "run"))
    assert solver_sources(run) == {}  # no experts stage yet: no solver to evaluate
    _manifest(run, "first")
    hypernet = run.hypernet_dir
    storage.write_text_atomic(storage.join(hypernet, META_FILE), '{"trained": 1}')
    sources = solver_sources(run)
    assert set(sources) == {"base", "all_data", "hard_routing", "customized"}

    problems = generate_suite(SynthConfig(train_per_family=1, heldout_per_family=1, heldout_comp_per_family=1)).heldout
    greedy = SamplingParams(max_new_tokens=32)
    keys = {kind: measurement_key(source, problems, greedy, [1], "all") for kind, source in sources.items()}
    assert len(set(keys.values())) == 4
    assert measurement_key(sources["base"], problems, greedy, [1], "all") == keys["base"]  # deterministic
    for other in (
        measurement_key(sources["base"], problems[1:], greedy, [1], "all"),
        measurement_key(sources["base"], problems, SamplingParams(max_new_tokens=64), [1], "all"),
        measurement_key(sources["base"], problems, greedy, [1, 10], "all"),
        measurement_key(sources["base"], problems, greedy, [1], "hidden"),
    ):
        assert other != keys["base"]

    _manifest(run, "retrained")  # the all-data LoRA trained again
    storage.write_text_atomic(storage.join(hypernet, META_FILE), '{"trained": 2}')  # and the hypernetwork
    again = solver_sources(run)
    assert measurement_key(again["base"], problems, greedy, [1], "all") == keys["base"]
    assert measurement_key(again["all_data"], problems, greedy, [1], "all") != keys["all_data"]
    assert measurement_key(again["customized"], problems, greedy, [1], "all") != keys["customized"]
    assert measurement_key(again["hard_routing"], problems, greedy, [1], "all") != keys["hard_routing"]


def test_a_solver_task_sends_back_its_load_and_generation(tmp_path):
    """What eval's Ray task returns beside the completions: the phases it paid, labelled "eval"
    (here called in-process on an untrained base: the figures, not the text, are under test)."""
    from bdc_ray.problems.synth import training_text
    from bdc_ray.timing import Timings
    from tests.disentangle.conftest import build_tiny_base

    suite = generate_suite(SynthConfig(train_per_family=4, heldout_per_family=1, heldout_comp_per_family=0))
    base = build_tiny_base(tmp_path / "base", [], [training_text(p) for p in suite.train])
    (texts, routed), paid = generate_timed("base", {"base_model": base}, [suite.heldout[0].prompt],
                                           SamplingParams(max_new_tokens=4))
    assert len(texts) == 1 and len(texts[0]) == 1 and routed == [{}]
    phases = Timings.from_json(paid).phases
    assert [(p.stage, p.name) for p in phases] == [("eval", LOAD_PHASE), ("eval", GENERATE_PHASE)]
