"""``ps``, ``inspect``, ``create``, ``start``, ``stop`` and ``rm`` against the reference runtime and containerd."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from crictl.tests.conftest import (
    BUSYBOX,
    Runtime,
    assert_one_line_error,
    container_config_dict,
    pod_config_dict,
    split_row,
    write_json,
)

pytestmark = pytest.mark.root

PS_HEADER = ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD", "NAMESPACE"]
ZERO_TIME = "0001-01-01T00:00:00Z"
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


@dataclass
class Setup:
    """A pod with its config files, and a running container in it created through crictl."""

    runtime: Runtime
    pod_id: str
    pod_config: str
    container_id: str
    directory: Path

    def container_config(self, name: str, **extra: object) -> str:
        """Write a busybox container config named ``name`` and return its path."""
        data = container_config_dict(name)
        data.pop("log_path")
        data["labels"] = {"io.kubernetes.pod.name": "ctr-pod", "io.kubernetes.pod.namespace": "crictl-test",
                          "test": name}
        data.update(extra)
        return write_json(self.directory / f"{name}.json", data)

    def create(self, name: str, *flags: str) -> str:
        """Create (not start) a container with crictl and return its ID."""
        result = self.runtime.crictl("create", *flags, self.pod_id, self.container_config(name), self.pod_config,
                                     check=True)
        return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def setup(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The module's pod and its running container; the pod goes (with its containers) at module end."""
    runtime.pull(BUSYBOX)  # for the containers crictl creates below
    directory = tmp_path_factory.mktemp(f"containers-{runtime.name}")
    config_path = write_json(directory / "pod.json", pod_config_dict("ctr-pod"))
    pod_id = runtime.run_pod("ctr-pod")
    partial = Setup(runtime, pod_id, config_path, "", directory)
    container_id = partial.create("ctr-main")
    started = runtime.crictl("start", container_id[:10], check=True)
    assert started.stdout == f"{container_id}\n"
    partial.container_id = container_id
    yield partial


def test_ps_table(setup: Setup) -> None:
    runtime = setup.runtime
    header, *rows = runtime.crictl("ps", "--pod", setup.pod_id, check=True).stdout.splitlines()
    assert split_row(header) == PS_HEADER
    assert len(rows) == 1
    cells = split_row(rows[0])
    image = runtime.crictl_json("ps", "--id", setup.container_id, "-o", "json")["containers"][0]["image"]["image"]
    expected_image = image.removeprefix("sha256:")[:13] if image.startswith("sha256:") else image
    assert cells[0] == setup.container_id[:13]
    assert cells[1] == expected_image
    assert cells[2].endswith(" ago")
    assert cells[3:] == ["Running", "ctr-main", "0", setup.pod_id[:13], "ctr-pod", "crictl-test"]
    full = split_row(runtime.crictl("ps", "--no-trunc", "--pod", setup.pod_id, check=True).stdout.splitlines()[1])
    assert full[0] == setup.container_id
    assert full[6] == setup.pod_id


def test_ps_filters(setup: Setup) -> None:
    runtime = setup.runtime
    created = setup.create("ctr-created")
    try:
        assert runtime.crictl("ps", "-q", "-p", setup.pod_id[:9], check=True).stdout.split() == [setup.container_id]
        everything = runtime.crictl("ps", "-qa", "--pod", setup.pod_id, check=True).stdout.split()
        assert everything == [created, setup.container_id]  # newest first
        assert runtime.crictl("ps", "-q", "-s", "created", "-p", setup.pod_id, check=True).stdout.split() == [created]
        assert runtime.crictl("ps", "-q", "-l", check=True).stdout.split() == [created]
        assert runtime.crictl("ps", "-q", "-n", "2", "-p", setup.pod_id, check=True).stdout.split() == everything
        assert runtime.crictl("ps", "-qa", "--name", "created$", check=True).stdout.split() == [created]
        assert runtime.crictl("ps", "-qa", "--label", "test=ctr-main", check=True).stdout.split() == [
            setup.container_id]
        assert runtime.crictl("ps", "-qa", "--namespace", "^crictl-test$", "-p", setup.pod_id,
                              check=True).stdout.split() == everything
        assert runtime.crictl("ps", "-qa", "--image", BUSYBOX, "-p", setup.pod_id,
                              check=True).stdout.split() == everything
        assert runtime.crictl("ps", "-qa", "--id", created[:11], check=True).stdout.split() == [created]
    finally:
        runtime.crictl("rm", created, check=True)


def test_ps_json_yaml_verbose(setup: Setup) -> None:
    runtime = setup.runtime
    listed = runtime.crictl_json("ps", "-o", "json", "--pod", setup.pod_id)
    assert list(listed) == ["containers"]
    (container,) = listed["containers"]
    assert {"id", "podSandboxId", "metadata", "image", "imageRef", "state", "createdAt", "labels",
            "annotations"} <= set(container)
    assert container["state"] == "CONTAINER_RUNNING"
    assert container["metadata"] == {"name": "ctr-main", "attempt": 0}
    assert isinstance(container["createdAt"], str)
    assert yaml.safe_load(runtime.crictl("ps", "-o", "yaml", "--pod", setup.pod_id, check=True).stdout) == listed
    lines = runtime.crictl("ps", "-v", "--pod", setup.pod_id, check=True).stdout.splitlines()
    assert lines[:6] == [f"ID: {setup.container_id}", f"PodID: {setup.pod_id}", "Namespace: crictl-test",
                         "Name: ctr-main", "Attempt: 0", "State: Running"]


def test_inspect(setup: Setup) -> None:
    runtime = setup.runtime
    result = runtime.crictl_json("inspect", setup.container_id[:12])
    assert "status" in result
    status = result["status"]
    assert status["id"] == setup.container_id
    assert status["state"] == "CONTAINER_RUNNING"
    assert RFC3339.fullmatch(status["createdAt"]) and RFC3339.fullmatch(status["startedAt"])
    assert status["finishedAt"] == ZERO_TIME
    assert list(status) == sorted(status)
    assert list(runtime.crictl_json("inspect", "-q", setup.container_id)) == ["status"]
    table = runtime.crictl("inspect", "-o", "table", setup.container_id, check=True).stdout.splitlines()
    assert table[:3] == [f"ID: {setup.container_id}", "Name: ctr-main", "State: CONTAINER_RUNNING"]
    by_filter = yaml.safe_load(runtime.crictl("inspect", "-o", "yaml", "--pod", setup.pod_id, check=True).stdout)
    assert by_filter["status"]["id"] == setup.container_id


def test_ps_quiet_into_inspect(setup: Setup) -> None:
    """``crictl ps -qa --pod P | xargs crictl inspect``: several IDs give a JSON array."""
    runtime = setup.runtime
    created = setup.create("ctr-xargs")
    try:
        ids = runtime.crictl("ps", "-qa", "--pod", setup.pod_id, check=True).stdout.split()
        inspected = runtime.crictl_json("inspect", *ids)
        assert isinstance(inspected, list)
        assert [entry["status"]["id"] for entry in inspected] == ids
        assert inspected[0]["status"]["startedAt"] == ZERO_TIME  # the created container never started
    finally:
        runtime.crictl("rm", created, check=True)


def test_stop_and_remove(setup: Setup) -> None:
    runtime = setup.runtime
    container_id = setup.create("ctr-stop")
    runtime.crictl("start", container_id, check=True)
    assert_one_line_error(runtime.crictl("rm", container_id), container_id, "please stop it first")
    assert runtime.crictl("stop", "-t", "1", container_id[:12], check=True).stdout == f"{container_id}\n"
    assert runtime.crictl("ps", "-q", "-s", "exited", "-p", setup.pod_id, check=True).stdout.split() == [container_id]
    status = runtime.crictl_json("inspect", container_id)["status"]
    assert status["state"] == "CONTAINER_EXITED"
    assert status["finishedAt"] != ZERO_TIME
    table = runtime.crictl("inspect", "-o", "table", container_id, check=True).stdout
    assert "Exit Code: " in table
    assert runtime.crictl("rm", container_id[:12], check=True).stdout == f"{container_id}\n"
    assert container_id not in runtime.crictl("ps", "-qa", check=True).stdout.split()


def test_force_remove_running(setup: Setup) -> None:
    runtime = setup.runtime
    container_id = setup.create("ctr-force")
    runtime.crictl("start", container_id, check=True)
    removed = runtime.crictl("rm", "-f", container_id, check=True)
    assert removed.stdout == f"{container_id}\n{container_id}\n"  # stopped, then removed


def test_create_with_pull_and_errors(setup: Setup) -> None:
    runtime = setup.runtime
    pulled = setup.create("ctr-pulled", "--with-pull")
    runtime.crictl("rm", pulled, check=True)
    config = setup.container_config("ctr-bad")
    conflict = runtime.crictl("create", "--no-pull", "--with-pull", setup.pod_id, config, setup.pod_config)
    assert_one_line_error(conflict, "no-pull and with-pull are both set")
    missing = runtime.crictl("create", setup.pod_id, str(setup.directory / "none.json"), setup.pod_config)
    assert_one_line_error(missing, "none.json not found")
    nameless = write_json(setup.directory / "nameless.json", {"metadata": {}, "image": {"image": BUSYBOX}})
    assert_one_line_error(runtime.crictl("create", setup.pod_id, nameless, setup.pod_config),
                          "name is not in metadata")
    unknown_pod = runtime.crictl("create", "f" * 64, config, setup.pod_config)
    assert_one_line_error(unknown_pod, "creating container")
    assert runtime.crictl("create", setup.pod_id).stdout.startswith("Usage: crictl create")


def test_unknown_ids_and_usage(setup: Setup) -> None:
    runtime = setup.runtime
    missing = "e" * 64
    assert_one_line_error(runtime.crictl("inspect", missing), missing)
    assert_one_line_error(runtime.crictl("start", missing), missing)
    assert_one_line_error(runtime.crictl("rm", missing), missing)
    assert_one_line_error(runtime.crictl("start"), "ID cannot be empty")
    assert_one_line_error(runtime.crictl("stop"), "must specify at least one CONTAINER-ID or use --all")
    assert_one_line_error(runtime.crictl("stop", "-a", missing), "cannot specify CONTAINER-ID(s) when using --all")
    assert_one_line_error(runtime.crictl("ps", "-s", "asleep"), "created, running, exited or unknown")
    assert_one_line_error(runtime.crictl("inspect", "--name", "no-such-container"), "nothing found per filter")
    assert runtime.crictl("ps", "-o", "wide").returncode == 2
    assert runtime.crictl("rm").stdout.startswith("Usage: crictl rm")


def test_stop_all_and_remove_all(setup: Setup) -> None:
    """Last in the module: stops and removes every container of the runtime."""
    runtime = setup.runtime
    stopped = runtime.crictl("stop", "-a", "-t", "0", check=True).stdout.split()
    assert setup.container_id in stopped
    assert runtime.crictl("ps", "-q", check=True).stdout == ""
    assert runtime.crictl("stop", "-a", check=True).stdout == "No running containers found.\n"
    removed = runtime.crictl("rm", "-a", check=True).stdout.split()
    assert setup.container_id in removed
    assert runtime.crictl("ps", "-qa", check=True).stdout == ""
    assert "No containers to remove" in runtime.crictl("rm", "-a", check=True).stderr
