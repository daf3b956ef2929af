"""The trash never deletes through a mount, however the mount point is spelt in mountinfo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reference_runtime import procfs
from reference_runtime.container.rootfs import mount, unmount
from reference_runtime.trash import _delete


def test_mountinfo_paths_are_unescaped() -> None:
    line = r"41 27 0:51 /a\134b /mnt/with\040space\011tab rw master:7 - tmpfs my\040source rw,size=1k"
    [entry] = procfs.mountinfo(line + "\n")
    assert (entry.root, entry.mount_point, entry.source) == ("/a\\b", "/mnt/with space\ttab", "my source")
    assert (entry.device, entry.tags, entry.fstype, entry.super_options) == ("0:51", ("master:7",), "tmpfs",
                                                                          "rw,size=1k")


@pytest.mark.root
def test_a_mount_under_a_path_with_a_space_stops_the_deletion(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs")
    doomed = tmp_path / "doomed dir"  # mountinfo spells it doomed\040dir
    mounted = doomed / "mounted"
    mounted.mkdir(parents=True)
    mount("tmpfs", mounted, "tmpfs")
    try:
        (mounted / "precious").write_text("kept")
        _delete(doomed, mounts=())
        assert (mounted / "precious").read_text() == "kept"
    finally:
        unmount(mounted)
    _delete(doomed, mounts=())
    assert not doomed.exists()
