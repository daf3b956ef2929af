"""End to end: critest's 13 NRI specs against the bundled reference runtime with NRI enabled all pass, and leave
nothing behind; a wrong --nri-socket fails them with a message that says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from critest.testbed.cleanup import listed_leftovers
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.testbed.registry import LocalRegistry
from critest.tests.critest_runs import CritestRun, kit_images_file, run_critest

pytestmark = pytest.mark.root

NRI_SPEC_PREFIX = "[It] [k8s.io] NRI "
NRI_SPECS = 13


@pytest.fixture(scope="module")
def nri_testbed(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceRuntimeTestbed]:
    """The reference runtime listening for NRI plugins on its own socket."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the reference runtime unpacks layers with their owners and device nodes")
    registry: LocalRegistry = request.getfixturevalue("local_registry")
    with ReferenceRuntimeTestbed(tmp_path_factory.mktemp("reference-runtime-nri"), registry.address,
                                 nri=True) as runtime:
        yield runtime


def run_nri_specs(testbed: ReferenceRuntimeTestbed, test_images_dir: Path, tmp_path: Path, nri_socket: str,
                  *extra: str) -> CritestRun:
    images_file = kit_images_file(test_images_dir, tmp_path / "test-images.yaml")
    run = run_critest(testbed.endpoint, images_file, tmp_path, f"--nri-socket={nri_socket}", *extra)
    assert listed_leftovers(testbed.endpoint) == [], "critest's NRI specs left these behind"
    return run


def nri_outcomes(run: CritestRun) -> dict[str, str]:
    return {name: outcome for name, outcome in run.outcomes().items() if name.startswith(NRI_SPEC_PREFIX)}


def test_every_nri_spec_passes_against_the_reference_runtime(nri_testbed: ReferenceRuntimeTestbed,
                                                             test_images_dir: Path, tmp_path: Path) -> None:
    run = run_nri_specs(nri_testbed, test_images_dir, tmp_path, str(nri_testbed.nri_socket), "--focus=NRI")
    outcomes = nri_outcomes(run)
    assert len(outcomes) == NRI_SPECS, run.output_tail()
    not_passed = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert not not_passed, run.result.stdout[-8000:]
    assert run.result.returncode == 0, run.output_tail()


def test_a_wrong_nri_socket_fails_the_specs_saying_why(nri_testbed: ReferenceRuntimeTestbed, test_images_dir: Path,
                                                       tmp_path: Path) -> None:
    run = run_nri_specs(nri_testbed, test_images_dir, tmp_path, str(tmp_path / "no-nri.sock"),
                        "--focus=NRI pod sandbox lifecycle")
    assert run.result.returncode != 0
    ran = {name: outcome for name, outcome in nri_outcomes(run).items() if "pod sandbox lifecycle" in name}
    assert list(ran.values()) == ["failed"], run.output_tail()
    assert "failed to start NRI test stub: cannot connect to the NRI socket" in run.junit.read_text()
