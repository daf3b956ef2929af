"""SELinux: process and mount labels. Collected only on hosts with SELinux enabled (see plugin)."""

from __future__ import annotations

from critest.framework import Describe

SELINUX = Describe("SELinux").context("runtime should support selinux")
SANDBOX_ITS = (
    "should work with just selinux level set",
    "should work with selinux set",
    "should error on create with wrong options",
    "mount label should have correct role and type",
    "mount label should have category",
    "process label should have correct role and type",
    "process label should have category",
    "should create containers with the same process label",
)


def _register(context: Describe, prefix: str) -> None:
    for index, text in enumerate(SANDBOX_ITS):
        globals()[f"test_{prefix}_{index}"] = context.pending(text)


_register(SELINUX.when("single pod sandbox is not privileged"), "unprivileged")
_register(SELINUX.when("single pod sandbox is privileged"), "privileged")
test_different_labels = SELINUX.when("multiple pod sandboxes are not privileged").pending(
    "should create containers with different process labels"
)
