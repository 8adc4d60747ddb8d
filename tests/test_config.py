from pathlib import Path

import pytest
import yaml

from bdc_ray.config import DEFAULT_CONFIG, ConfigError, load_config, parse_config


def test_repository_config_is_valid_and_resolves_paths():
    cfg = load_config(DEFAULT_CONFIG)
    assert Path(cfg.storage_path).is_absolute()
    for ds in cfg.stages.eval.datasets:
        assert Path(ds.path).is_file(), ds.path


def test_unknown_key_is_reported_with_its_path(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"sandbox": {"limits": {"time_sec": 3}}}))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert "sandbox.limits.time_sec: unknown key" in str(err.value)


def test_bad_values_name_every_key_path(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"sandbox": {"workers_per_actor": 0}, "stages": {"eval": {"k": [0]}}}))
    with pytest.raises(ConfigError) as err:
        load_config(f)
    msg = str(err.value)
    assert "sandbox.workers_per_actor" in msg
    assert "stages.eval.k" in msg


def test_bad_yaml_and_missing_file_are_clear(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("sandbox: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")


def test_empty_file_means_all_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("")
    cfg = load_config(f)
    assert cfg.run_dir == str(tmp_path / "runs" / "default")


def test_uris_are_not_resolved_and_overrides_merge():
    cfg = parse_config({"storage_path": "s3://bucket/x"})
    assert cfg.run_dir == "s3://bucket/x/default"
    cfg = load_config(DEFAULT_CONFIG, {"run_name": "smoke", "sandbox": {"limits": {"time_s": 2}}})
    assert cfg.run_name == "smoke" and cfg.sandbox.limits.time_s == 2
    assert cfg.sandbox.limits.memory_mb == load_config(DEFAULT_CONFIG).sandbox.limits.memory_mb


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([1, 2])


def test_stage_sections_name_bad_keys_by_path():
    with pytest.raises(ConfigError) as err:
        parse_config(
            {
                "stages": {
                    "disentangle": {"cluster": {"k": "six", "kk": 3}, "experts": {"zero_stage": 5}},
                    "customize": {"search": {"lr": [1.0, 0.1]}},
                }
            }
        )
    text = str(err.value)
    assert "stages.disentangle.cluster.kk: unknown key" in text
    assert "stages.disentangle.cluster.k:" in text and "stages.disentangle.experts.zero_stage:" in text
    assert "stages.customize.search.lr:" in text


def test_override_files_merge_in_order_and_are_validated_as_one_config(tmp_path):
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({"run_name": "one", "sandbox": {"limits": {"time_s": 2}},
                                     "stages": {"eval": {"k": [1, 2], "max_new_tokens": 9}}}))
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump({"run_name": "two", "stages": {"eval": {"k": [1]}}}))
    base = load_config(DEFAULT_CONFIG)
    cfg = load_config(DEFAULT_CONFIG, override_files=[first, second])
    assert cfg.run_name == "two" and cfg.sandbox.limits.time_s == 2
    assert cfg.sandbox.limits.memory_mb == base.sandbox.limits.memory_mb  # mappings merge key by key
    assert cfg.stages.eval.k == [1] and cfg.stages.eval.max_new_tokens == 9  # lists are replaced whole
    assert load_config(DEFAULT_CONFIG, {"run_name": "three"}, [first, second]).run_name == "three"
    # relative paths resolve against the main config's folder, wherever the override file is
    rel = tmp_path / "rel.yaml"
    rel.write_text(yaml.safe_dump({"storage_path": "./elsewhere"}))
    assert load_config(DEFAULT_CONFIG, override_files=[rel]).storage_path == str(DEFAULT_CONFIG.parent / "elsewhere")


def test_bad_override_files_are_named(tmp_path):
    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text(yaml.safe_dump({"stages": {"boost": {"serach": {}}}}))
    with pytest.raises(ConfigError) as err:
        load_config(DEFAULT_CONFIG, override_files=[bad_key])
    assert f"{DEFAULT_CONFIG} + {bad_key}" in str(err.value) and "stages.boost.serach: unknown key" in str(err.value)
    listed = tmp_path / "list.yaml"
    listed.write_text("- run_name: x\n")
    with pytest.raises(ConfigError, match="an override file must be a mapping"):
        load_config(DEFAULT_CONFIG, override_files=[listed])
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(DEFAULT_CONFIG, override_files=[tmp_path / "missing.yaml"])
