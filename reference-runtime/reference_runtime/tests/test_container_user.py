"""Resolving image users: every USER form, groups, bad input, and no way out of the rootfs through a symlink."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reference_runtime import errors
from reference_runtime.container import user as users
from reference_runtime.container.user import ResolvedUser, read_file_in_root, resolve_group, resolve_user
from reference_runtime.tests.rootfs import unpack_single_layer_image

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment line
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
broken-line-without-ids
carol:x:notanumber:5::/:/bin/sh
nohome:x:1002:1002
"""

GROUP = """\
root:x:0:
wheel:x:10:root,alice
alice:x:1000:
bob:x:1001:
staff:x:50:alice,bob
audio:x:63: bob ,
"""

OUTSIDE_PASSWD = "hostonly:x:4242:4242::/:/bin/sh\n"


def make_rootfs(root: Path, passwd: str | None = PASSWD, group: str | None = GROUP) -> Path:
    (root / "etc").mkdir(parents=True)
    if passwd is not None:
        (root / "etc" / "passwd").write_text(passwd)
    if group is not None:
        (root / "etc" / "group").write_text(group)
    return root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "rootfs")


@pytest.mark.parametrize(("spec", "expected"), [
    ("", ResolvedUser(0, 0, (10,), "/root")),
    ("root", ResolvedUser(0, 0, (10,), "/root")),
    ("0", ResolvedUser(0, 0, (10,), "/root")),
    ("alice", ResolvedUser(1000, 1000, (10, 50), "/home/alice")),
    ("1000", ResolvedUser(1000, 1000, (10, 50), "/home/alice")),
    ("bob", ResolvedUser(1001, 1001, (50, 63), "/home/bob")),
    ("alice:staff", ResolvedUser(1000, 50, (10, 50), "/home/alice")),
    ("alice:7", ResolvedUser(1000, 7, (10, 50), "/home/alice")),
    ("1000:1004", ResolvedUser(1000, 1004, (10, 50), "/home/alice")),
    ("1001:wheel", ResolvedUser(1001, 10, (50, 63), "/home/bob")),
    ("nohome", ResolvedUser(1002, 1002, (), "/")),
    # A uid without a passwd entry runs with gid 0 and no supplementary groups, as runc and containerd do.
    ("5555", ResolvedUser(5555, 0, (), "/")),
    ("5555:5556", ResolvedUser(5555, 5556, (), "/")),
    ("4294967294", ResolvedUser(4294967294, 0, (), "/")),
])
def test_user_forms(rootfs: Path, spec: str, expected: ResolvedUser) -> None:
    assert resolve_user(rootfs, spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("mallory", 'user "mallory" not found'),
    ("carol", 'user "carol" not found'),  # its passwd line is malformed, so it is skipped
    ("alice:nogroup", 'group "nogroup" not found'),
    ("1000:nogroup", 'group "nogroup" not found'),
    ("a:b:c", "more than one ':'"),
    (":1000", "empty user or group"),
    ("1000:", "empty user or group"),
    ("4294967295", "not a valid id"),
    ("1000:99999999999", "not a valid id"),
    ("root\nx", "invalid user"),
])
def test_bad_users(rootfs: Path, spec: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message):
        resolve_user(rootfs, spec)


def test_no_passwd_or_group_file(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "rootfs", passwd=None, group=None)
    assert resolve_user(root, "1234") == ResolvedUser(1234, 0, (), "/")
    assert resolve_user(root, "1234:99") == ResolvedUser(1234, 99, (), "/")
    with pytest.raises(errors.InvalidArgument, match='user "alice" not found: the image has no /etc/passwd'):
        resolve_user(root, "alice")
    with pytest.raises(errors.InvalidArgument, match='group "staff" not found: the image has no /etc/group'):
        resolve_user(root, "1234:staff")


def test_resolve_group(rootfs: Path) -> None:
    assert resolve_group(rootfs, "staff") == 50
    assert resolve_group(rootfs, "123") == 123
    with pytest.raises(errors.InvalidArgument, match='group "nope" not found'):
        resolve_group(rootfs, "nope")


def test_file_over_the_cap_is_refused(rootfs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "MAX_FILE_BYTES", 64)
    with pytest.raises(errors.InvalidArgument, match="/etc/passwd in the image is larger than 64 bytes"):
        resolve_user(rootfs, "alice")
    (rootfs / "etc" / "passwd").write_text("x" * (1 << 20))
    with pytest.raises(errors.InvalidArgument, match="larger than"):
        read_file_in_root(rootfs, "/etc/passwd", limit=1000)


# --------------------------------------------------------------------------- symlinks never leave the rootfs


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A passwd file next to the rootfs, standing for a host file a link might try to reach."""
    path = tmp_path / "outside" / "passwd"
    path.parent.mkdir()
    path.write_text(OUTSIDE_PASSWD)
    return path


def link_passwd(root: Path, target: str) -> None:
    (root / "etc" / "passwd").unlink(missing_ok=True)
    (root / "etc" / "passwd").symlink_to(target)


@pytest.mark.parametrize(("target", "inside"), [
    ("{outside}", "{outside}"),  # absolute: starts over at the rootfs
    ("../../../../../../../..{outside}", "{outside}"),  # `..` stops at the rootfs
    ("../outside/passwd", "/outside/passwd"),
])
def test_links_out_of_the_rootfs_do_not_reach_host_files(tmp_path: Path, outside: Path, target: str,
                                                          inside: str) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    link_passwd(root, target.format(outside=outside))
    with pytest.raises(errors.InvalidArgument, match='user "hostonly" not found'):
        resolve_user(root, "hostonly")
    # The link names a path inside the rootfs: a file there is what gets read.
    in_root = root / inside.format(outside=outside).lstrip("/")
    in_root.parent.mkdir(parents=True, exist_ok=True)
    in_root.write_text("inroot:x:77:78::/:/bin/sh\n")
    assert resolve_user(root, "inroot") == ResolvedUser(77, 78, (), "/")


def test_link_to_shadow_reads_the_image_shadow(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path / "rootfs")
    (root / "etc" / "shadow").write_text("fromshadow:x:31:32::/:/bin/sh\n")
    link_passwd(root, "/etc/shadow")
    assert resolve_user(root, "fromshadow") == ResolvedUser(31, 32, (), "/")
    assert read_file_in_root(root, "/etc/passwd") == (root / "etc" / "shadow").read_bytes()


def test_linked_directories_resolve_inside(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr" / "etc").mkdir(parents=True)
    (root / "usr" / "etc" / "passwd").write_text(PASSWD)
    (root / "etc").symlink_to("/usr/etc")
    assert resolve_user(root, "alice").uid == 1000
    (root / "etc").unlink()
    (root / "etc").symlink_to("../../../../usr/etc")  # `..` stops at the rootfs
    assert resolve_user(root, "alice").uid == 1000
    assert read_file_in_root(root, "/etc/../etc/./passwd") == PASSWD.encode()


@pytest.mark.parametrize("kind", ["loop", "self", "directory", "fifo", "dangling", "root"])
def test_unusable_files_count_as_absent(tmp_path: Path, kind: str) -> None:
    root = make_rootfs(tmp_path / "rootfs", passwd=None)
    passwd = root / "etc" / "passwd"
    if kind == "loop":
        (root / "etc" / "a").symlink_to("b")
        (root / "etc" / "b").symlink_to("a")
        passwd.symlink_to("a")
    elif kind == "self":
        passwd.symlink_to("../etc/passwd")
    elif kind == "directory":
        passwd.mkdir()
    elif kind == "fifo":
        os.mkfifo(passwd)  # must not block
    elif kind == "dangling":
        passwd.symlink_to("/nowhere/passwd")
    else:
        passwd.symlink_to("/")
    assert read_file_in_root(root, "/etc/passwd") is None
    assert resolve_user(root, "1000") == ResolvedUser(1000, 0, (), "/")
    with pytest.raises(errors.InvalidArgument, match="no /etc/passwd"):
        resolve_user(root, "alice")


def test_parsers_skip_malformed_lines() -> None:
    assert [e.name for e in users.parse_passwd(PASSWD.encode())] == ["root", "alice", "bob", "nohome"]
    groups = {e.name: e for e in users.parse_group(GROUP.encode())}
    assert groups["audio"].members == ("bob",)
    assert groups["root"].members == ()


# --------------------------------------------------------------------------- the kit's busybox image


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: unpacking a layer chowns its files")
def test_busybox_image_users(test_images_dir: Path, tmp_path: Path) -> None:
    root = unpack_single_layer_image(test_images_dir, tmp_path / "busybox")
    assert resolve_user(root, "") == ResolvedUser(0, 0, (10,), "/root")  # wheel lists root
    assert resolve_user(root, "nobody") == ResolvedUser(65534, 65534, (), "/home")
    assert resolve_user(root, "www-data") == ResolvedUser(33, 33, (), "/var/www")
    assert resolve_user(root, "www-data:1004") == ResolvedUser(33, 1004, (), "/var/www")
    assert resolve_user(root, "1002") == ResolvedUser(1002, 0, (), "/")
    assert resolve_user(root, "1003:users") == ResolvedUser(1003, 100, (), "/")
    with pytest.raises(errors.InvalidArgument, match='user "default-user" not found'):
        resolve_user(root, "default-user")
