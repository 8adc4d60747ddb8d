"""The `serve:` section: defaults, cross-field checks, and when auth is required."""

import pytest
from pydantic import ValidationError

from bdc_ray.serve.config import ServeConfig, is_loopback


def test_defaults_bind_loopback_without_required_auth():
    cfg = ServeConfig()
    assert cfg.host == "127.0.0.1" and not cfg.auth_required
    assert cfg.autoscaling.serve_dict() == {
        "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 4.0,
        "upscale_delay_s": 10.0, "downscale_delay_s": 60.0,
    }


@pytest.mark.parametrize(
    ("host", "require", "required"),
    [("0.0.0.0", "auto", True), ("10.1.2.3", "auto", True), ("::", "auto", True), ("my-host", "auto", True),
     ("127.0.0.1", "auto", False), ("localhost", "auto", False), ("::1", "auto", False),
     ("127.0.0.1", "always", True), ("0.0.0.0", "never", False)],
)
def test_auth_required_beyond_loopback_by_default(host, require, required):
    assert ServeConfig(host=host, auth={"require": require}).auth_required is required


def test_loopback_detection():
    assert is_loopback("127.8.0.1") and is_loopback("[::1]") and not is_loopback("192.168.0.1")


def test_bad_values_name_the_field():
    with pytest.raises(ValidationError, match="max_replicas"):
        ServeConfig(autoscaling={"min_replicas": 3, "max_replicas": 2})
    with pytest.raises(ValidationError, match="initial_replicas"):
        ServeConfig(autoscaling={"min_replicas": 1, "max_replicas": 2, "initial_replicas": 5})
    with pytest.raises(ValidationError, match="max_ongoing_requests"):
        ServeConfig(max_ongoing_requests=4, batching={"max_batch_size": 8})
    with pytest.raises(ValidationError, match="solve.max_tokens"):
        ServeConfig(limits={"max_tokens": 100})
    with pytest.raises(ValidationError, match="extra"):
        ServeConfig(limits={"max_prompt_char": 3})
    with pytest.raises(ValidationError, match="route_prefix"):
        ServeConfig(route_prefix="api")


def test_the_vllm_engine_is_chosen_by_config_and_validates():
    assert ServeConfig().engine == "transformers"
    cfg = ServeConfig(engine="vllm", vllm={"max_loras": 8, "max_cpu_loras": 8, "max_adapters_on_disk": 16,
                                           "quant_step": 0.02, "engine_args": {"max_model_len": 4096}})
    assert (cfg.vllm.max_loras, cfg.vllm.quant_step, cfg.vllm.adapter_dtype) == (8, 0.02, "bfloat16")
    assert ServeConfig(vllm={"max_adapters_on_disk": 1, "max_cpu_loras": 1, "max_loras": 1}).engine == "transformers"


@pytest.mark.parametrize(
    ("serve", "path", "says"),
    [
        ({"engine": "tgi"}, "serve.engine", "'transformers' or 'vllm'"),
        ({"vllm": {"max_lora": 2}}, "serve.vllm.max_lora", "unknown key"),
        ({"vllm": {"max_loras": 8, "max_cpu_loras": 4}}, "serve.vllm", "max_cpu_loras (4) must be >= max_loras (8)"),
        ({"vllm": {"max_cpu_loras": 32, "max_adapters_on_disk": 16}}, "serve.vllm",
         "max_adapters_on_disk (16) must be >= max_cpu_loras (32)"),
        ({"vllm": {"engine_args": {"max_lora_rank": 64, "enforce_eager": True}}}, "serve.vllm",
         "engine_args may not set ['max_lora_rank']"),
        ({"vllm": {"quant_step": -0.1}}, "serve.vllm.quant_step", "greater than or equal to 0"),
        ({"vllm": {"adapter_dtype": "int8"}}, "serve.vllm.adapter_dtype", "'float32', 'bfloat16' or 'float16'"),
        ({"engine": "vllm", "batching": {"max_batch_size": 32}, "max_ongoing_requests": 64,
          "vllm": {"max_adapters_on_disk": 16}}, "serve", "vllm.max_adapters_on_disk (16) must be >= batching.max_batch_size (32)"),
    ],
)
def test_bad_vllm_settings_name_their_key_path(serve, path, says):
    from bdc_ray.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"serve": serve})
    line = next(line for line in str(err.value).splitlines() if line.startswith(f"  {path}:"))
    assert says in line, str(err.value)


def test_the_adapter_folder_is_found_relative_to_the_config(tmp_path):
    from bdc_ray.config import parse_config

    cfg = parse_config({"serve": {"engine": "vllm", "vllm": {"adapter_dir": "adapters"}}}, base=tmp_path)
    assert cfg.serve.vllm.adapter_dir == str(tmp_path / "adapters")
