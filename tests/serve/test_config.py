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
