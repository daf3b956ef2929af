"""Idempotence: stopping and removing what is already gone must succeed (CRI contract)."""

from __future__ import annotations

from cri_api import pb
from critest import framework as fw
from critest.framework import Cri, Describe, RuntimeQuirk

IDEMPOTENCE = Describe("Idempotence")
ZERO_IMAGE_ID = "0" * 64

CONTAINERD_16_STOP_UNKNOWN_ID = RuntimeQuirk(
    "containerd", "1.6.",
    "containerd 1.6 answers NotFound to a stop of an unknown ID; the CRI requires success (fixed in 1.7)",
)


@IDEMPOTENCE.context("StopPodSandbox").it("should not return an error if not found")
def test_stop_pod_sandbox_not_found(cri: Cri) -> None:
    with cri.known_quirk(CONTAINERD_16_STOP_UNKNOWN_ID):
        fw.stop_pod_sandbox(cri, fw.new_uuid())


@IDEMPOTENCE.context("StopPodSandbox").it("should not return an error if already stopped")
def test_stop_pod_sandbox_twice(cri: Cri) -> None:
    pod_id, _ = fw.run_default_pod_sandbox(cri, "idempotence-stop-pod-")
    for _ in range(2):
        fw.stop_pod_sandbox(cri, pod_id)
        state = fw.pod_sandbox_status(cri, pod_id).state
        assert state == pb.PodSandboxState.SANDBOX_NOTREADY, f"pod state {pb.PodSandboxState.Name(state)}"


@IDEMPOTENCE.context("RemovePodSandbox").it("should not return an error if not found")
def test_remove_pod_sandbox_not_found(cri: Cri) -> None:
    fw.remove_pod_sandbox(cri, fw.new_uuid())


@IDEMPOTENCE.context("StopContainer").it("should not return an error if not found")
def test_stop_container_not_found(cri: Cri) -> None:
    with cri.known_quirk(CONTAINERD_16_STOP_UNKNOWN_ID):
        fw.stop_container(cri, fw.new_uuid(), timeout=0)


@IDEMPOTENCE.context("StopContainer").it("should not return an error if already stopped")
def test_stop_container_twice(cri: Cri) -> None:
    pod_id, pod_config = fw.run_default_pod_sandbox(cri, "idempotence-stop-container-")
    container_id = fw.create_pause_container(cri, pod_id, pod_config, "idempotence-container-")
    fw.start_container(cri, container_id)
    fw.stop_container(cri, container_id)
    state = fw.container_status(cri, container_id).state
    assert state == pb.ContainerState.CONTAINER_EXITED, f"container state {pb.ContainerState.Name(state)}"
    # Upstream removes twice here (not stops twice); both must succeed.
    fw.remove_container(cri, container_id)
    fw.remove_container(cri, container_id)


@IDEMPOTENCE.context("RemoveContainer").it("should not return an error if not found")
def test_remove_container_not_found(cri: Cri) -> None:
    fw.remove_container(cri, fw.new_uuid())


@IDEMPOTENCE.context("RemoveImage").it("should not return an error if not found")
def test_remove_image_not_found(cri: Cri) -> None:
    fw.remove_image(cri, ZERO_IMAGE_ID)
    fw.remove_image(cri, ZERO_IMAGE_ID)
