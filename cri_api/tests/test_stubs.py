"""The committed stubs are what the pinned generator makes, and pyproject's floors admit them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUB_DIR = REPO / "cri_api" / "runtime" / "v1"
STUBS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def dependency_floor(name: str) -> tuple[int, ...]:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    for dependency in dependencies:
        match = re.fullmatch(rf"{re.escape(name)}>=([\d.]+)", dependency)
        if match:
            return version_tuple(match.group(1))
    raise AssertionError(f"pyproject.toml has no '{name}>=' floor")


def test_grpcio_floor_admits_generated_code() -> None:
    generated = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", (STUB_DIR / "api_pb2_grpc.py").read_text())
    assert generated, "api_pb2_grpc.py names no GRPC_GENERATED_VERSION"
    assert dependency_floor("grpcio") >= version_tuple(generated.group(1))


def test_protobuf_floor_admits_generated_code() -> None:
    generated = re.search(r"# Protobuf Python Version: ([\d.]+)", (STUB_DIR / "api_pb2.py").read_text())
    assert generated, "api_pb2.py names no protobuf version"
    assert dependency_floor("protobuf") >= version_tuple(generated.group(1))


def test_generator_pin_matches_grpcio_floor() -> None:
    optional = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    pinned = next(dep for dep in optional if dep.startswith("grpcio-tools=="))
    assert version_tuple(pinned.split("==")[1]) == dependency_floor("grpcio")


def test_committed_stubs_are_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools not installed (pip install -e .[dev])")
    from cri_api.generate import generate

    generate(tmp_path)
    for stub in STUBS:
        fresh = (tmp_path / "cri_api" / "runtime" / "v1" / stub).read_bytes()
        assert fresh == (STUB_DIR / stub).read_bytes(), f"{stub} is stale: run python -m cri_api.generate"


def test_generator_refuses_an_unpinned_grpcio_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    from cri_api import generate

    monkeypatch.setattr(generate.metadata, "version", lambda _name: "0.0.1")
    with pytest.raises(SystemExit, match=rf"grpcio-tools 0.0.1 is installed but {generate.pinned_tools_version()}"):
        generate.generate(Path("/nonexistent"))
