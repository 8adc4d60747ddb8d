"""Agents -> backends, and the experts' default base model: the student, else the first agent's local weights."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from bdc_ray.llm.gguf import read_source, sha256_of
from bdc_ray.llm.spec import BackendSpec
from bdc_ray.models import AgentConfig, ModelsSection, StudentConfig, first_agent_model, resolve_backends, student_model
from tests.llm.gguf_files import write_tiny_gguf

MICRO = {"name": "micro-student", "seed": 3, "layers": 1, "hidden": 32, "heads": 2, "steps": 4, "warmup": 0,
         "vocab_size": 300, "synth": {"train_per_family": 4, "heldout_per_family": 0, "heldout_comp_per_family": 0}}
"""A student recipe that builds in seconds (its weights are garbage: only where it lands matters here)."""


@pytest.mark.ray
def test_without_a_base_model_the_first_agents_weights_are_adapted(ray_local, tmp_path) -> None:
    local = AgentConfig(name="a", model={"backend": "transformers", "path": str(tmp_path)})
    remote = AgentConfig(name="b", model={"backend": "openai", "path": "m", "base_url": "http://127.0.0.1:1/v1"})
    assert first_agent_model([local, remote], "/unused") == str(tmp_path)
    with pytest.raises(ValueError, match="need local weights"):
        first_agent_model([remote, local], "/unused")
    with pytest.raises(ValueError, match="no base model"):
        first_agent_model([], "/unused")


@pytest.mark.ray
def test_the_student_is_built_apart_from_the_teachers(ray_local, tmp_path, caplog) -> None:
    teacher = AgentConfig(name="teacher", model={"backend": "transformers", "path": str(tmp_path / "teacher")})
    models = ModelsSection(build_root=str(tmp_path / "models"), agents=[teacher], student={"tiny": MICRO})
    built = Path(student_model(models))
    assert built.parent == tmp_path / "models" and built.name.startswith("micro-student-")
    assert (built / "config.json").is_file()
    assert student_model(models) == str(built)  # cached by recipe: the second call builds nothing
    caplog.set_level(logging.WARNING, logger="bdc_ray.models.resolve")
    assert student_model(models.model_copy(update={"student": None})) == str(tmp_path / "teacher")
    assert "its own teacher" in caplog.text


def test_a_student_reached_over_http_or_named_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        StudentConfig(model={"backend": "transformers", "path": "x"}, tiny=MICRO)
    remote = ModelsSection(student={"model": {"backend": "openai", "path": "m", "base_url": "http://127.0.0.1:1/v1"}})
    with pytest.raises(ValueError, match="need local weights"):
        student_model(remote)


@pytest.mark.ray
def test_agents_get_gguf_models_converted_by_a_ray_task_and_instruct_agents_chat(ray_local, tmp_path: Path) -> None:
    tiny_gguf = write_tiny_gguf(tmp_path / "gguf")
    build_root = tmp_path / "models"
    gguf_entry = {"backend": "transformers", "path": str(tiny_gguf.path.parent), "gguf_file": tiny_gguf.path.name}
    agents = [
        AgentConfig(name="teacher", model=BackendSpec(**gguf_entry), style="instruct"),
        AgentConfig(name="plain", model=BackendSpec(**gguf_entry, chat=False), style="instruct"),
        AgentConfig(name="remote", model=BackendSpec(backend="openai", path="m", base_url="http://127.0.0.1:9/v1")),
    ]
    specs = resolve_backends(agents, str(build_root))
    teacher = specs["teacher"]
    assert teacher.gguf_file is None and Path(teacher.path).parent == build_root  # converted into build_root
    assert read_source(teacher.path)["sha256"] == sha256_of([tiny_gguf.path])
    assert (teacher.chat, specs["plain"].chat, specs["remote"].chat) == (True, False, False)
    assert specs["plain"].path == teacher.path  # one conversion serves both
    assert first_agent_model(agents, str(build_root)) == teacher.path  # experts adapt the converted weights


def test_a_finished_build_is_found_without_a_ray_task(tmp_path, monkeypatch) -> None:
    """On an autoscaling cluster a task that only finds the model built would start a node for nothing."""
    import ray

    from bdc_ray.tiny import TinyModelConfig, build_tiny

    built = build_tiny(TinyModelConfig(**MICRO), tmp_path, threads=1, progress=False)

    def no_task(*args, **kwargs):
        raise AssertionError("a Ray task was scheduled")

    monkeypatch.setattr(ray, "remote", no_task)
    agent = AgentConfig(name="s", tiny=MICRO)
    assert resolve_backends([agent], str(tmp_path))["s"].path == str(built)
    assert student_model(ModelsSection(build_root=str(tmp_path), agents=[agent], student={"tiny": MICRO})) == str(built)
    with pytest.raises(AssertionError, match="a Ray task was scheduled"):  # another recipe still needs its build
        resolve_backends([AgentConfig(name="t", tiny={**MICRO, "seed": 4})], str(tmp_path))
