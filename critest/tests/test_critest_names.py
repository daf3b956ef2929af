"""The collected specs carry exactly upstream's names, so a TestGrid row stays the same row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import critest.plugin
from critest import constants as c
from critest.framework import spec_name

DATA = Path(__file__).parent / "data"


def read_names(file_name: str) -> set[str]:
    lines = (DATA / file_name).read_text().splitlines()
    return {line for line in lines if line and not line.startswith("#")}


class NameCollector:
    """Records the spec name of every collected item."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.serial: set[str] = set()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            name = spec_name(item)
            assert name is not None, f"{item.nodeid} has no upstream spec name"
            self.names.append(name)
            if item.get_closest_marker("serial"):
                self.serial.add(name)


def collect(*options: str) -> NameCollector:
    collector = NameCollector()
    args = ["-c", "/dev/null", "--collect-only", "-q", "-p", "critest.plugin", "-p", "no:cacheprovider",
            "--runtime-endpoint=unix:///nonexistent", *options, "--pyargs", "critest.suites"]
    assert pytest.main(args, plugins=[collector]) == pytest.ExitCode.OK
    return collector


@pytest.fixture
def selinux_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    enforce = tmp_path / "enforce"
    enforce.write_text("1")
    monkeypatch.setattr(critest.plugin, "SELINUX_ENFORCE", enforce)
    yield


@pytest.fixture
def no_selinux_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(critest.plugin, "SELINUX_ENFORCE", tmp_path / "absent")


def test_names_match_upstream_linux_list(no_selinux_host: None) -> None:
    collected = collect()
    assert len(collected.names) == len(set(collected.names)), "duplicate spec names"
    expected = (read_names("spec-names-linux.txt") | read_names("spec-names-head-additions.txt")) - set(
        c.BENCHMARK_SPEC_NAMES
    )
    assert set(collected.names) == expected


def test_benchmark_names_are_in_the_upstream_list() -> None:
    assert set(c.BENCHMARK_SPEC_NAMES) <= read_names("spec-names-linux.txt")


def test_selinux_specs_only_where_selinux_is_enabled(selinux_host: None) -> None:
    selinux = read_names("spec-names-selinux.txt")
    assert len(selinux) == 17
    assert selinux <= set(collect().names)


def test_nri_specs_only_with_a_socket(no_selinux_host: None) -> None:
    nri = read_names("spec-names-nri.txt")
    assert not nri & set(collect().names)
    with_socket = collect("--nri-socket=/run/nri/nri.sock")
    assert nri <= set(with_socket.names)
    assert nri <= with_socket.serial, "NRI specs must run serially"


def test_all_154_with_selinux_and_nri(selinux_host: None) -> None:
    assert len(collect("--nri-socket=/run/nri/nri.sock").names) == 154


def test_image_specs_are_serial(no_selinux_host: None) -> None:
    collected = collect()
    image_specs = {name for name in collected.names if name.startswith(("[k8s.io] Image Manager",
                                                                        "[k8s.io] Image Consistency",
                                                                        "[k8s.io] Image Identifier"))}
    assert len(image_specs) == 15
    assert image_specs <= collected.serial
