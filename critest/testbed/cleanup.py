"""Clean-up both test beds share: every pod removed through CRI, then what the OCI runtimes still know."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cri_api import pb
from cri_api.client import RuntimeClient
from cri_api.errors import CRIError, EndpointError

POD_TEARDOWN_TIMEOUT_SECONDS = 30.0


def remove_all_pods(endpoint: str) -> list[str]:
    """Stop and remove every pod sandbox (and so every container) through CRI; return what could not be."""
    try:
        with RuntimeClient.connect(endpoint, timeout=5.0) as client:
            sandboxes = client.list_pod_sandbox(pb.ListPodSandboxRequest()).items
            return [problem for sandbox in sandboxes for problem in remove_pod(client, sandbox.id)]
    except (EndpointError, CRIError) as exc:
        return [f"removing pods: {exc}"]


def listed_leftovers(endpoint: str) -> list[str]:
    """Every pod sandbox and container the runtime still lists, described; empty when nothing was left behind.

    Tests call it before the bed's own clean-up (``remove_all_pods``), which would otherwise hide a leak.
    """
    with RuntimeClient.connect(endpoint, timeout=5.0) as client:
        pods = client.list_pod_sandbox(pb.ListPodSandboxRequest()).items
        containers = client.list_containers(pb.ListContainersRequest()).containers
    return [f"pod sandbox {pod.id} ({pod.metadata.name})" for pod in pods] + [
        f"container {container.id} ({container.metadata.name})" for container in containers]


def remove_pod(client: RuntimeClient, sandbox_id: str) -> list[str]:
    try:
        client.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
                                timeout=POD_TEARDOWN_TIMEOUT_SECONDS)
        client.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
                                  timeout=POD_TEARDOWN_TIMEOUT_SECONDS)
    except CRIError as exc:
        return [f"removing pod sandbox {sandbox_id}: {exc}"]
    return []


def delete_oci_containers(binary: str, root: Path) -> None:
    """Force-delete every container the OCI runtime ``binary`` still lists under its state ``root``.

    stdin is an empty pipe, never /dev/null: runsc changes the owner of the files behind its stdio.
    """
    for container_id in _run_quietly([binary, "--root", str(root), "list", "--quiet"]).split():
        _run_quietly([binary, "--root", str(root), "delete", "--force", container_id])


def _run_quietly(argv: list[str]) -> str:
    return subprocess.run(argv, input=b"", capture_output=True, check=False).stdout.decode(errors="replace")
