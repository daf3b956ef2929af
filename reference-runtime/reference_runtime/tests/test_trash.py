"""The trash never deletes through a mount, however the mount point is spelt in mountinfo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reference_runtime import procfs
from reference_runtime.container.rootfs import mount, unmount
from reference_runtime.trash import Trash, _delete


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


@pytest.mark.root
def test_emptying_unmounts_what_a_stopped_daemon_left_mounted(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts a tmpfs")
    trash = Trash(tmp_path / "trash")
    entry = trash.directory / "left behind"
    mounted = entry / "rootfs"
    (mounted / "under").mkdir(parents=True)
    (mounted / "under" / "hidden").write_text("covered by the mount")
    mount("tmpfs", mounted, "tmpfs")
    (mounted / "precious").write_text("kept")
    # A handle on the tmpfs outlives its lazy unmount: through it, the mount's files can be seen after.
    handle = os.open(mounted, os.O_RDONLY | os.O_DIRECTORY)
    try:
        trash.empty()
        assert os.listdir(handle) == ["precious"]
    finally:
        os.close(handle)
        unmount(mounted)
    assert not entry.exists()  # the directories under the mount went too
    assert trash.directory.is_dir()
    assert not [m for m in procfs.mountinfo() if m.mount_point.startswith(str(tmp_path) + "/")]
