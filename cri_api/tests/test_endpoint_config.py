"""Endpoint resolution and the config file, with upstream crictl's precedence and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cri_api.config import ConfigError, CrictlConfig, config_path, load_config, parse_duration
from cri_api.endpoint import DEFAULT_RUNTIME_ENDPOINTS, grpc_target, resolve_endpoints, socket_path
from cri_api.errors import EndpointError, EndpointNotSet

FLAG, ENV, FILE = "unix:///flag.sock", "unix:///env.sock", "unix:///file.sock"


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"),
    [
        (FLAG, ENV, FILE, FLAG),
        (None, ENV, FILE, ENV),
        (None, None, FILE, FILE),
        (None, "", FILE, FILE),
    ],
    ids=["flag-wins", "env-over-file", "file", "empty-env-is-unset"],
)
def test_runtime_endpoint_precedence(flag: str | None, env: str | None, file: str, expected: str) -> None:
    environ = {"CONTAINER_RUNTIME_ENDPOINT": env} if env is not None else {}
    endpoints = resolve_endpoints(flag, None, CrictlConfig(runtime_endpoint=file), environ)
    assert endpoints.runtime == expected
    assert endpoints.candidates == (expected,)


def test_a_runtime_flag_set_to_nothing_is_refused_when_used() -> None:
    endpoints = resolve_endpoints("", None, CrictlConfig(runtime_endpoint=FILE), {})
    assert endpoints.runtime_set
    with pytest.raises(EndpointNotSet, match=r"^--runtime-endpoint is not set$"):
        _ = endpoints.candidates
    with pytest.raises(EndpointNotSet, match=r"^--image-endpoint is not set$"):
        _ = endpoints.image_candidates
    assert resolve_endpoints("", "unix:///img.sock", CrictlConfig(), {}).image_candidates == ("unix:///img.sock",)


def test_image_endpoint_precedence_and_fallback() -> None:
    config = CrictlConfig(runtime_endpoint=FILE, image_endpoint="unix:///img-file.sock")
    assert resolve_endpoints(None, "unix:///img.sock", config, {}).image == "unix:///img.sock"
    assert resolve_endpoints(None, None, config, {"IMAGE_SERVICE_ENDPOINT": ENV}).image == ENV
    assert resolve_endpoints(None, None, config, {}).image == "unix:///img-file.sock"
    assert resolve_endpoints(FLAG, None, CrictlConfig(), {}).image_candidates == (FLAG,)


def test_nothing_set_means_default_list() -> None:
    endpoints = resolve_endpoints(None, None, None, {})
    assert not endpoints.runtime_set
    assert endpoints.candidates == DEFAULT_RUNTIME_ENDPOINTS
    assert endpoints.image_candidates == DEFAULT_RUNTIME_ENDPOINTS
    assert DEFAULT_RUNTIME_ENDPOINTS[0] == "unix:///run/containerd/containerd.sock"


@pytest.mark.parametrize(
    ("endpoint", "path", "target"),
    [
        ("unix:///run/x.sock", "/run/x.sock", "unix:///run/x.sock"),
        ("/run/x.sock", "/run/x.sock", "unix:///run/x.sock"),
        ("rel/x.sock", "rel/x.sock", "unix:rel/x.sock"),
    ],
)
def test_endpoint_forms(endpoint: str, path: str, target: str) -> None:
    assert socket_path(endpoint) == path
    assert grpc_target(endpoint) == target


def test_tcp_is_refused() -> None:
    with pytest.raises(EndpointError, match="unsupported scheme 'tcp'"):
        socket_path("tcp://127.0.0.1:10000")


def test_config_file_values(tmp_path: Path) -> None:
    path = tmp_path / "crictl.yaml"
    path.write_text("runtime-endpoint: unix:///a.sock\nimage-endpoint: unix:///b.sock\ntimeout: 10\ndebug: true\n")
    config = load_config(path)
    assert (config.runtime_endpoint, config.image_endpoint, config.timeout, config.debug) == (
        "unix:///a.sock", "unix:///b.sock", 10, True)
    assert config.max_retries == 0  # upstream: a config file without max-retries means 0


def test_missing_config_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "absent.yaml") == CrictlConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("runtime-endpoint: x\nbogus: 1\n", "Config option 'bogus' is not valid"),
        ("timeout: soon\n", "must be a int"),
        ("timeout: true\n", "must be a int"),
        ("- a\n- b\n", "must be a map"),
        ("runtime-endpoint: [unclosed\n", "not valid YAML"),
    ],
    ids=["unknown-key", "wrong-type", "bool-for-int", "not-a-map", "bad-yaml"],
)
def test_bad_config_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crictl.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRI_CONFIG_FILE", "/env/crictl.yaml")
    assert config_path("/flag/crictl.yaml") == Path("/flag/crictl.yaml")
    assert config_path(None) == Path("/env/crictl.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5h", 5400.0), ("0", 0.0), ("250us", 0.00025)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2", "s", "2x", "1m30", "two seconds"])
def test_parse_bad_duration(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
