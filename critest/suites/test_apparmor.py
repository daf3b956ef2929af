"""AppArmor: the deprecated apparmor_profile field, the structured apparmor field, and their precedence."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cri_api import pb
from critest import framework as fw
from critest.framework import Cri, Describe

APPARMOR = Describe("AppArmor")
DEPRECATED = APPARMOR.context("runtime should support deprecated apparmor_profile field")
STRUCTURED = APPARMOR.context("runtime should support apparmor field")
PREFER_NEW = APPARMOR.context("runtime should prefer new apparmor field")
APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")
PROFILE_PREFIX = "localhost/"
UNLOADED_PROFILE = "non-existent-profile"
DENY_WRITE = "cri-validate-apparmor-test-deny-write"
AUDIT_WRITE = "cri-validate-apparmor-test-audit-write"
WRITE_COMMAND = ("touch", "/tmp/foo")
# Upstream's two test profiles: one denies every file write, the other only audits writes.
PROFILE_TEMPLATE = """
#include <tunables/global>
profile {deny} flags=(attach_disconnected) {{
  #include <abstractions/base>
  file,
  deny /** w,
}}
profile {audit} flags=(attach_disconnected) {{
  #include <abstractions/base>
  file,
  audit /** w,
}}
"""


Pod = tuple[str, pb.PodSandboxConfig]


@dataclass(frozen=True)
class Profiles:
    """The names under which this spec loaded the deny-write and audit-write profiles."""

    deny_write: str
    audit_write: str


def apparmor_enabled() -> bool:
    try:
        return APPARMOR_ENABLED.read_text().startswith("Y")
    except OSError:
        return False


def apparmor_parser(*args: str) -> subprocess.CompletedProcess[str]:
    if os.geteuid() != 0:
        raise AssertionError("AppArmor is enabled, and loading the test profiles with apparmor_parser needs root: "
                             "run critest as root")
    try:
        return subprocess.run(["apparmor_parser", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise AssertionError("AppArmor is enabled but apparmor_parser is not installed (Debian: apparmor)") from exc


def load_profiles(cri: Cri) -> Profiles:
    """Load upstream's profiles under names unique to this spec; unload them at cleanup.

    Unique names let parallel specs unload their own copies without pulling one from under another.
    """
    suffix = fw.new_uuid()[:8]
    profiles = Profiles(f"{DENY_WRITE}-{suffix}", f"{AUDIT_WRITE}-{suffix}")
    with tempfile.NamedTemporaryFile("w", prefix="apparmor", suffix=".profile", delete=False) as source:
        source.write(PROFILE_TEMPLATE.format(deny=profiles.deny_write, audit=profiles.audit_write))
    path = Path(source.name)
    cri.cleanup.add(f"removing {path}", lambda: path.unlink(missing_ok=True))
    cri.cleanup.add(f"unloading AppArmor profiles {profiles}", lambda: unload_profiles(path))
    loaded = apparmor_parser("-r", "-W", str(path))
    # apparmor_parser may exit 0 after a problem, so any stderr counts as a failure (as upstream).
    assert loaded.returncode == 0 and not loaded.stderr.strip(), (
        f"apparmor_parser -r -W failed to load the test profiles (exit {loaded.returncode}): {loaded.stderr.strip()}"
    )
    return profiles


def unload_profiles(path: Path) -> None:
    unloaded = apparmor_parser("-R", str(path))
    if unloaded.returncode != 0:
        raise RuntimeError(f"apparmor_parser -R exited {unloaded.returncode}: {unloaded.stderr.strip()}")


@pytest.fixture
def profiles(cri: Cri) -> Profiles:
    """Upstream's BeforeEach: skip without AppArmor on the host, else load the test profiles."""
    if not apparmor_enabled():
        pytest.skip("AppArmor is disabled on this host")
    return load_profiles(cri)


@pytest.fixture
def pod(cri: Cri, profiles: Profiles) -> Pod:
    return fw.run_default_pod_sandbox(cri, "PodSandbox-for-apparmor-test-")


def localhost(name: str) -> str:
    return PROFILE_PREFIX + name


def structured(name: str) -> pb.SecurityProfile:
    return pb.SecurityProfile(profile_type=pb.SecurityProfile.ProfileType.Localhost, localhost_ref=localhost(name))


def apparmor_container_config(cri: Cri, context: pb.LinuxContainerSecurityContext) -> pb.ContainerConfig:
    return fw.container_config("apparmor-test-" + fw.new_uuid(), cri.context.images.default_container,
                               WRITE_COMMAND, linux=pb.LinuxContainerConfig(security_context=context))


def check_create_fails(cri: Cri, pod: Pod, context: pb.LinuxContainerSecurityContext) -> None:
    config = apparmor_container_config(cri, context)
    fw.pull_public_image(cri, config.image.image, pod[1])
    fw.expect_error(lambda: fw.create_container(cri, pod[0], config, pod[1]),
                    f"CreateContainer with an AppArmor profile that is not loaded ({fw.one_line(context)})")


def check_write(cri: Cri, pod: Pod, context: pb.LinuxContainerSecurityContext, allowed: bool) -> None:
    """Run ``touch /tmp/foo`` under the profile; it must exit 0 exactly when writes are allowed."""
    container_id = fw.create_container(cri, pod[0], apparmor_container_config(cri, context), pod[1])
    fw.start_container(cri, container_id)
    status = fw.wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_EXITED)
    profile = fw.one_line(context)
    if allowed:
        assert status.exit_code == 0, f"touch /tmp/foo exited {status.exit_code} under {profile}; writes are allowed"
    else:
        assert status.exit_code != 0, f"touch /tmp/foo exited 0 under {profile}; the profile denies writes"


def deprecated_field(name: str) -> pb.LinuxContainerSecurityContext:
    return pb.LinuxContainerSecurityContext(apparmor_profile=localhost(name))


def structured_field(name: str) -> pb.LinuxContainerSecurityContext:
    return pb.LinuxContainerSecurityContext(apparmor=structured(name))


def both_fields(name: str) -> pb.LinuxContainerSecurityContext:
    """The deprecated field names an unloaded profile; the structured one, which must win, ``name``."""
    return pb.LinuxContainerSecurityContext(apparmor_profile=localhost(UNLOADED_PROFILE), apparmor=structured(name))


@DEPRECATED.it("should fail with an unloaded apparmor_profile")
def test_deprecated_unloaded(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_create_fails(cri, pod, deprecated_field(UNLOADED_PROFILE))


@DEPRECATED.it("should enforce a apparmor_profile blocking writes")
def test_deprecated_blocking(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, deprecated_field(profiles.deny_write), allowed=False)


@DEPRECATED.it("should enforce a permissive deprecated profile")
def test_deprecated_permissive(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, deprecated_field(profiles.audit_write), allowed=True)


@STRUCTURED.it("should fail with an unloaded apparmor_profile")
def test_structured_unloaded(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_create_fails(cri, pod, structured_field(UNLOADED_PROFILE))


@STRUCTURED.it("should enforce a apparmor_profile blocking writes")
def test_structured_blocking(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, structured_field(profiles.deny_write), allowed=False)


@STRUCTURED.it("should enforce a permissive deprecated profile")
def test_structured_permissive(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, structured_field(profiles.audit_write), allowed=True)


@PREFER_NEW.it("should fail with an unloaded apparmor_profile")
def test_prefer_new_unloaded(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_create_fails(cri, pod, both_fields(UNLOADED_PROFILE))


@PREFER_NEW.it("should enforce a apparmor_profile blocking writes")
def test_prefer_new_blocking(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, both_fields(profiles.deny_write), allowed=False)


@PREFER_NEW.it("should work with apparmor profile")
def test_prefer_new_works(cri: Cri, pod: Pod, profiles: Profiles) -> None:
    check_write(cri, pod, both_fields(profiles.audit_write), allowed=True)
