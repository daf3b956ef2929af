"""UpdateContainerResources: how the requested resources combine with the ones a container already has.

The end-to-end side (the limits reach the cgroup, ContainerStatus reports them) is in crictl/tests/test_update.py.
"""

from __future__ import annotations

from typing import Any

from reference_runtime.server.container_update import merge_resources

CURRENT: dict[str, Any] = {
    "devices": [{"allow": False, "access": "rwm"}],
    "cpu": {"shares": 512, "period": 200000, "quota": 100000},
    "memory": {"limit": 96 << 20, "swap": 96 << 20},
}


def test_a_field_left_out_keeps_its_value() -> None:
    merged = merge_resources(CURRENT, {"cpu": {"quota": 30000}})
    assert merged["cpu"] == {"shares": 512, "period": 200000, "quota": 30000}
    assert merged["memory"] == CURRENT["memory"]
    assert merged["devices"] == CURRENT["devices"]


def test_new_sections_and_fields_are_added() -> None:
    merged = merge_resources({"cpu": {"shares": 2}}, {"cpu": {"cpus": "0"}, "memory": {"limit": 1 << 26}})
    assert merged == {"cpu": {"shares": 2, "cpus": "0"}, "memory": {"limit": 1 << 26}}


def test_lists_are_replaced_and_the_current_resources_stay_untouched() -> None:
    hugepages = [{"pageSize": "2MB", "limit": 1 << 21}]
    merged = merge_resources(CURRENT, {"hugepageLimits": hugepages, "memory": {"limit": 1 << 27, "swap": 1 << 27}})
    assert merged["hugepageLimits"] == hugepages
    assert merged["memory"] == {"limit": 1 << 27, "swap": 1 << 27}
    assert CURRENT["memory"] == {"limit": 96 << 20, "swap": 96 << 20}


def test_an_empty_update_changes_nothing() -> None:
    assert merge_resources(CURRENT, {}) == CURRENT
