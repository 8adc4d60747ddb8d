"""Bearer-token auth: where the key comes from, what is accepted, and refusing to start without a key."""

import pytest

from bdc_ray.serve.api import APIError
from bdc_ray.serve.auth import AuthConfigError, BearerAuth, load_api_key, make_auth
from bdc_ray.serve.config import AuthSection, ServeConfig

KEY = "k" * 24


def test_only_the_exact_bearer_token_passes():
    auth = BearerAuth(KEY)
    auth.check(f"Bearer {KEY}")
    auth.check(f"bearer {KEY}")
    for bad in (None, "", KEY, f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", f"Basic {KEY}", "Bearer "):
        with pytest.raises(APIError) as err:
            auth.check(bad)
        assert err.value.status == 401 and "API key" in err.value.message


def test_disabled_auth_accepts_anything():
    BearerAuth(None).check(None)


def test_key_from_file_wins_over_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BDC_TEST_KEY", "e" * 20)
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    assert load_api_key(AuthSection(api_key_env="BDC_TEST_KEY", api_key_file=str(key_file))) == KEY
    assert load_api_key(AuthSection(api_key_env="BDC_TEST_KEY")) == "e" * 20
    monkeypatch.delenv("BDC_TEST_KEY")
    assert load_api_key(AuthSection(api_key_env="BDC_TEST_KEY")) is None


def test_unusable_keys_are_refused(tmp_path, monkeypatch):
    with pytest.raises(AuthConfigError, match="cannot read"):
        load_api_key(AuthSection(api_key_file=str(tmp_path / "missing")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(AuthConfigError, match="empty"):
        load_api_key(AuthSection(api_key_file=str(tmp_path / "empty")))
    monkeypatch.setenv("BDC_TEST_KEY", "short")
    with pytest.raises(AuthConfigError, match="at least 16"):
        load_api_key(AuthSection(api_key_env="BDC_TEST_KEY"))


def test_public_bind_without_key_refuses_to_start(monkeypatch):
    monkeypatch.delenv("BDC_TEST_KEY", raising=False)
    public = ServeConfig(host="0.0.0.0", auth={"api_key_env": "BDC_TEST_KEY"})
    with pytest.raises(AuthConfigError, match="BDC_TEST_KEY"):
        make_auth(public)
    assert not make_auth(ServeConfig(auth={"api_key_env": "BDC_TEST_KEY"})).enabled
    assert not make_auth(public.model_copy(update={"auth": AuthSection(require="never", api_key_env="BDC_TEST_KEY")})).enabled
    monkeypatch.setenv("BDC_TEST_KEY", KEY)
    assert make_auth(public).enabled
    assert make_auth(ServeConfig(auth={"api_key_env": "BDC_TEST_KEY"})).enabled  # a configured key is enforced
