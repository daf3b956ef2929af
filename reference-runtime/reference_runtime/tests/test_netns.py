"""Pinned network namespaces: real ones, checked through the kernel's own views (mountinfo, nsenter, /proc).

Each test works in its own directory; the fixture removes every namespace and unmounts the directory's
self bind mount, and checks that mountinfo no longer mentions the directory.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reference_runtime import errors
from reference_runtime.network.netns import create_netns, netns_exists, remove_netns
from reference_runtime.tests.polling import eventually

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unshare(CLONE_NEWNET) and mount")]


def mountinfo_lines(path: Path) -> list[str]:
    """The mountinfo lines whose mount point is ``path`` (paths in the tests have nothing to escape)."""
    with open("/proc/self/mountinfo") as mountinfo:
        return [line for line in mountinfo if line.split(" ")[4] == str(path)]


def links_in(path: Path) -> str:
    return subprocess.run(["nsenter", f"--net={path}", "ip", "-o", "link"], check=True, capture_output=True,
                          text=True).stdout


def children_of_this_process() -> list[int]:
    """PIDs whose parent is this process (a helper left running would show up here)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{os.getpid()}\n" in status:
                children.append(int(entry))
    return children


@pytest.fixture
def netns_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "state" / "netns"
    yield directory
    if directory.exists():
        for path in directory.iterdir():
            remove_netns(path)
    subprocess.run(["umount", "--lazy", str(directory)], capture_output=True)
    assert not [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(tmp_path) in line]


def test_create_pins_a_new_namespace_with_only_lo_and_lo_down(netns_dir: Path) -> None:
    path = netns_dir / "pod1"
    create_netns(path)
    assert netns_exists(path)
    assert os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino
    links = links_in(path).splitlines()
    assert len(links) == 1 and ": lo: " in links[0]
    assert "state DOWN" in links[0] and ",UP" not in links[0]


def test_the_directory_is_a_private_mount_and_the_file_an_nsfs_mount(netns_dir: Path) -> None:
    path = netns_dir / "pod1"
    create_netns(path)
    [directory] = mountinfo_lines(netns_dir)
    optional_fields = directory.split(" - ")[0].split(" ")[6:]
    assert not [field for field in optional_fields if field.startswith(("shared:", "master:"))]
    [pin] = mountinfo_lines(path)
    assert " - nsfs " in pin and "net:[" in pin


def test_each_namespace_is_a_different_one(netns_dir: Path) -> None:
    create_netns(netns_dir / "a")
    create_netns(netns_dir / "b")
    assert os.stat(netns_dir / "a").st_ino != os.stat(netns_dir / "b").st_ino


def test_remove_unmounts_deletes_and_is_idempotent(netns_dir: Path) -> None:
    path = netns_dir / "pod1"
    create_netns(path)
    remove_netns(path)
    assert not path.exists()
    assert not netns_exists(path)
    assert mountinfo_lines(path) == []
    remove_netns(path)
    remove_netns(netns_dir / "never-created")


def test_exists_is_false_for_missing_plain_and_unmounted_files(netns_dir: Path) -> None:
    assert not netns_exists(netns_dir / "missing")
    path = netns_dir / "pod1"
    create_netns(path)
    subprocess.run(["umount", str(path)], check=True)
    assert path.exists()
    assert not netns_exists(path)
    assert not netns_exists(Path("/proc/self/ns/mnt"))  # an nsfs file, but not a network namespace
    assert netns_exists(Path("/proc/self/ns/net"))


def test_create_over_a_live_namespace_is_refused_and_leaves_it_alone(netns_dir: Path) -> None:
    path = netns_dir / "pod1"
    create_netns(path)
    inode = os.stat(path).st_ino
    with pytest.raises(errors.AlreadyExists, match="pod1"):
        create_netns(path)
    assert netns_exists(path) and os.stat(path).st_ino == inode
    assert len(mountinfo_lines(path)) == 1


def test_create_reuses_a_stale_file(netns_dir: Path) -> None:
    path = netns_dir / "pod1"
    create_netns(path)
    subprocess.run(["umount", str(path)], check=True)
    create_netns(path)
    assert netns_exists(path)
    assert len(mountinfo_lines(path)) == 1


def test_no_process_or_thread_stays_behind(netns_dir: Path) -> None:
    # Other tests' session fixtures (a registry, ...) are children too: compare with before.
    children = set(children_of_this_process())
    threads, tasks = threading.active_count(), set(os.listdir("/proc/self/task"))
    for index in range(5):
        create_netns(netns_dir / f"pod{index}")
    assert set(children_of_this_process()) <= children
    assert threading.active_count() == threads
    # join() returns once the Python thread is done; the kernel task can linger a moment longer.
    assert eventually(lambda: set(os.listdir("/proc/self/task")) <= tasks, timeout=5)


def test_this_process_stays_in_its_namespace(netns_dir: Path) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    create_netns(netns_dir / "pod1")
    assert os.readlink("/proc/thread-self/ns/net") == before
    assert os.readlink("/proc/self/ns/net") == before


def test_concurrent_creates_get_distinct_namespaces(netns_dir: Path) -> None:
    paths = [netns_dir / f"pod{index}" for index in range(12)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(create_netns, paths))
    assert len({os.stat(path).st_ino for path in paths}) == len(paths)
    assert len(mountinfo_lines(netns_dir)) == 1


def test_create_says_why_it_failed(netns_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(errors.Internal, match="a-file"):
        create_netns(blocker / "netns" / "pod1")
