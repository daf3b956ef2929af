"""``crictl config`` on temporary config files (never /etc/crictl.yaml), and the writer behind it."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from cri_api.config import ConfigError, CrictlConfig, load_config, render_config, with_option
from cri_api.tests.servers import VersionOnlyRuntime, cri_server
from crictl.tests.conftest import assert_one_line_error, run_crictl

DEFAULT_FILE = """\
runtime-endpoint: ""
image-endpoint: ""
timeout: 0
debug: false
pull-image-on-create: false
disable-pull-on-run: false
max-retries: 0
"""


def config(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``crictl -c path config args...``"""
    return run_crictl("-c", str(path), "config", *args)


def test_missing_file_is_created_with_every_option(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "crictl.yaml"
    result = config(path, "--get", "debug")
    assert (result.returncode, result.stdout, result.stderr) == (0, "false\n", "")
    assert path.read_text() == DEFAULT_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_set_get_and_list(tmp_path: Path) -> None:
    path = tmp_path / "crictl.yaml"
    endpoint = "unix:///run/containerd/containerd.sock"
    assert config(path, "--set", f"runtime-endpoint={endpoint},timeout=5", "--set", "debug=true").returncode == 0
    assert path.read_text() == DEFAULT_FILE.replace('runtime-endpoint: ""', f"runtime-endpoint: {endpoint}") \
        .replace("timeout: 0", "timeout: 5").replace("debug: false", "debug: true")
    assert config(path, "--get", "runtime-endpoint").stdout == f"{endpoint}\n"
    assert config(path, "--get", "timeout").stdout == "5\n"
    assert config(path, "--get", "image-endpoint").stdout == "\n"
    listed = config(path, "--list")
    assert listed.returncode == 0
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["KEY", "VALUE"], ["runtime-endpoint", endpoint], ["image-endpoint"], ["timeout", "5"], ["debug", "true"],
        ["pull-image-on-create", "false"], ["disable-pull-on-run", "false"], ["max-retries", "0"]]
    assert "\033" not in listed.stdout  # the screen is cleared on a terminal only
    assert load_config(path) == CrictlConfig(runtime_endpoint=endpoint, timeout=5, debug=True, path=path)


def test_comments_and_order_survive(tmp_path: Path) -> None:
    path = tmp_path / "crictl.yaml"
    path.write_text("# node-local settings\ndebug: true  # while we look into it\n"
                    "runtime-endpoint: unix:///old.sock\n")
    assert config(path, "--set", "runtime-endpoint=unix:///new.sock,debug=false").returncode == 0
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# node-local settings", "debug: false  # while we look into it",
                         "runtime-endpoint: unix:///new.sock"]
    assert [line.split(":")[0] for line in lines[3:]] == [
        "image-endpoint", "timeout", "pull-image-on-create", "disable-pull-on-run", "max-retries"]


def test_legacy_key_value_form(tmp_path: Path) -> None:
    path = tmp_path / "crictl.yaml"
    result = config(path, "pull-image-on-create", "true")
    assert result.returncode == 0, result.stderr
    assert 'setting key "pull-image-on-create" to value "true"' in result.stderr
    assert load_config(path).pull_image_on_create is True
    shown = config(path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("Usage: crictl config")


def test_environment_names_the_file_and_crictl_reads_it_back(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    with cri_server(tmp_path / "cri.sock", runtime=VersionOnlyRuntime()) as endpoint:
        assert run_crictl("config", "--set", f"runtime-endpoint={endpoint}", env={"CRI_CONFIG_FILE": str(path)}) \
            .returncode == 0
        version = run_crictl("-c", str(path), "version")
    assert version.returncode == 0, version.stderr
    assert "RuntimeName:  test-runtime" in version.stdout


@pytest.mark.parametrize(("args", "fragments"), [
    (["--get", "runtime-endpoin"], ["no configuration option named runtime-endpoin"]),
    (["--set", "colour=blue"], ["no configuration option named colour"]),
    (["--set", "debug=maybe"], ["parse debug value 'maybe'"]),
    (["--set", "timeout=2s"], ["parse timeout value '2s'"]),
    (["--set", "debug"], ["incorrectly specified option: debug"]),
    (["--set", "image-endpoint=a=b"], ["incorrectly specified option: image-endpoint=a=b"]),
    (["timeout", "soon"], ['set "timeout" to "soon"', "parse timeout value 'soon'"]),
])
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], fragments: list[str]) -> None:
    path = tmp_path / "crictl.yaml"
    path.write_text("debug: true\n")
    result = config(path, *args)
    if not args[0].startswith("-"):
        result.stderr = result.stderr.split("\n", 1)[1]  # the legacy form announces itself first
    assert_one_line_error(result, *fragments)
    assert load_config(path) == CrictlConfig(debug=True, path=path)  # nothing written


def test_usage_errors(tmp_path: Path) -> None:
    assert config(tmp_path / "crictl.yaml", "debug", "true", "extra").returncode == 2
    assert config(tmp_path / "crictl.yaml", "--lists").returncode == 2


def test_unusable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(config(blocker / "crictl.yaml", "--get", "debug"), "config file", "Not a directory")


def test_render_config_quotes_and_rewrites_what_it_cannot_edit_in_place() -> None:
    values = with_option(with_option(CrictlConfig(), "image-endpoint", "yes"), "runtime-endpoint", "a: b #c")
    rendered = render_config("", values)
    assert 'image-endpoint: "yes"' in rendered
    assert 'runtime-endpoint: "a: b #c"' in rendered
    flow = render_config("{debug: true, timeout: 3}", with_option(CrictlConfig(timeout=3), "debug", "0"))
    assert flow.splitlines()[2:4] == ["timeout: 3", "debug: false"]
    with pytest.raises(ConfigError, match="invalid syntax"):
        with_option(CrictlConfig(), "max-retries", "")
