"""The committed NRI stubs are what the pinned generator makes from cri_api/nri/proto, and they keep upstream's
wire numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from cri_api.nri import api
from cri_api.nri.proto import nri_pb2 as nri

REPO = Path(__file__).resolve().parents[2]
STUB_DIR = REPO / "cri_api" / "nri" / "proto"
STUBS = ("nri_pb2.py", "nri_pb2.pyi", "ttrpc_pb2.py", "ttrpc_pb2.pyi")


def test_committed_nri_stubs_are_fresh(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools not installed (pip install -e .[dev])")
    from cri_api.generate import generate

    generate(tmp_path)
    for stub in STUBS:
        fresh = (tmp_path / "cri_api" / "nri" / "proto" / stub).read_bytes()
        assert fresh == (STUB_DIR / stub).read_bytes(), f"{stub} is stale: run python -m cri_api.generate"
    assert not (tmp_path / "cri_api" / "nri" / "proto" / "nri_pb2_grpc.py").exists(), "ttrpc needs no gRPC stubs"


def test_field_and_event_numbers_are_upstreams() -> None:
    fields = {name: number for name, number in (("pod_sandbox_id", 2), ("name", 3), ("created_at", 14),
                                                ("exit_code", 17), ("status_message", 19))}
    container = nri.Container.DESCRIPTOR.fields_by_name
    assert {name: container[name].number for name in fields} == fields
    assert nri.ConfigureResponse.DESCRIPTOR.fields_by_name["events"].number == 2
    assert nri.PodSandbox.DESCRIPTOR.fields_by_name["ips"].number == 10
    assert (nri.RUN_POD_SANDBOX, nri.CREATE_CONTAINER, nri.STOP_CONTAINER, nri.LAST) == (1, 4, 10, 15)


def test_an_event_mask_has_a_bit_per_event() -> None:
    mask = api.event_mask([nri.RUN_POD_SANDBOX, nri.REMOVE_CONTAINER])
    assert mask == 0b100_0000_0001
    assert api.subscribed(mask, nri.REMOVE_CONTAINER) and not api.subscribed(mask, nri.STOP_CONTAINER)
    assert api.event_mask(range(1, 15)) == api.VALID_EVENTS_MASK


@pytest.mark.parametrize(("name", "index", "problem"), [
    ("plugin", "1", "not two digits"), ("plugin", "0a", "not two digits"), ("", "00", "non-empty"),
    ("a/b", "10", "contain no '/'"),
])
def test_bad_plugin_identities_are_named(name: str, index: str, problem: str) -> None:
    assert problem in (api.check_plugin_identity(name, index) or "")


def test_a_good_plugin_identity_passes() -> None:
    assert api.check_plugin_identity("cri-test-nri-pod-lifecycle", "00") is None
