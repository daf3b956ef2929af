"""``crictl update-runtime-config`` against the reference runtime and containerd.

The test beds' CNI configs declare no ``ipRanges`` capability and containerd has no conf template, so a pod
CIDR handed over here changes nothing for the other tests of the session.
"""

from __future__ import annotations

import pytest

from crictl.tests.conftest import Runtime, assert_one_line_error

pytestmark = pytest.mark.root

UPDATED = "INFO Runtime config successfully updated\n"


@pytest.mark.parametrize("cidr", ["10.99.0.0/16", "10.99.0.1/16", ""])
def test_pod_cidr_is_accepted(runtime: Runtime, cidr: str) -> None:
    """An empty CIDR is sent too: runtimes are to ignore it."""
    result = runtime.crictl("update-runtime-config", "--pod-cidr", cidr, check=True)
    assert (result.stdout, result.stderr) == ("", UPDATED)


def test_dual_stack_pod_cidrs(runtime: Runtime) -> None:
    """The kubelet joins a dual-stack node's pod CIDRs with a comma."""
    result = runtime.crictl("update-runtime-config", "-p", "10.99.0.0/16,fd00:99::/64")
    assert (result.returncode, result.stderr) == (0, UPDATED)


def test_bad_cidr_is_the_runtime_error(runtime: Runtime) -> None:
    code = "UNKNOWN" if runtime.name == "containerd" else "INVALID_ARGUMENT"
    assert_one_line_error(runtime.crictl("update-runtime-config", "-p", "not-a-cidr"),
                          f"update runtime config: {code}: ", "not-a-cidr")


def test_no_flag_or_arguments_show_help(runtime: Runtime) -> None:
    for args in ([], ["10.99.0.0/16"], ["-p", "10.99.0.0/16", "extra"]):
        result = runtime.crictl("update-runtime-config", *args)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.startswith("Usage: crictl update-runtime-config")
