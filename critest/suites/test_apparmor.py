"""AppArmor: the deprecated apparmor_profile field, the structured apparmor field, and their precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from critest.framework import Describe

APPARMOR = Describe("AppArmor")
DEPRECATED = APPARMOR.context("runtime should support deprecated apparmor_profile field")
STRUCTURED = APPARMOR.context("runtime should support apparmor field")
PREFER_NEW = APPARMOR.context("runtime should prefer new apparmor field")
APPARMOR_ENABLED = Path("/sys/module/apparmor/parameters/enabled")


@pytest.fixture(autouse=True)
def _require_apparmor() -> None:
    """Upstream's BeforeEach: these specs need AppArmor enabled on the host."""
    try:
        enabled = APPARMOR_ENABLED.read_text().startswith("Y")
    except OSError:
        enabled = False
    if not enabled:
        pytest.skip("AppArmor is not enabled on this host")
    pytest.skip("AppArmor profile loading: not implemented yet")


test_deprecated_unloaded = DEPRECATED.pending("should fail with an unloaded apparmor_profile")
test_deprecated_blocking = DEPRECATED.pending("should enforce a apparmor_profile blocking writes")
test_deprecated_permissive = DEPRECATED.pending("should enforce a permissive deprecated profile")
test_structured_unloaded = STRUCTURED.pending("should fail with an unloaded apparmor_profile")
test_structured_blocking = STRUCTURED.pending("should enforce a apparmor_profile blocking writes")
test_structured_permissive = STRUCTURED.pending("should enforce a permissive deprecated profile")
test_prefer_new_unloaded = PREFER_NEW.pending("should fail with an unloaded apparmor_profile")
test_prefer_new_blocking = PREFER_NEW.pending("should enforce a apparmor_profile blocking writes")
test_prefer_new_works = PREFER_NEW.pending("should work with apparmor profile")
