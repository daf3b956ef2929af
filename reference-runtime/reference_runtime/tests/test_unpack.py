"""Applying a layer: metadata round-trips, whiteouts, the diff ID, limits, broken streams, and no way out.

Every test runs next to a sentinel directory and checks on teardown that nothing outside the layer's own
directory changed; the escape tests build their paths so that a wrong turn would land in that sentinel.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import struct
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from reference_runtime import errors
from reference_runtime.image.unpack import LayerResult, LayerTooLarge, UnsafeLayer, apply_layer

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: chown, mknod and trusted.* xattrs")

MTIME = 1_600_000_000
NS = 1_000_000_000
# cap_net_bind_service=p as a version 2 security.capability value
NET_BIND_CAPABILITY = struct.pack("<IIIII", 0x02000001, 1 << 10, 0, 0, 0)


class Layer:
    """A layer tar built one entry at a time: ``Layer().dir("etc").file("etc/motd", b"hi").tar()``."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._tar = tarfile.TarFile(fileobj=self._buffer, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *, mode: int = 0o644, uid: int = 0,
            gid: int = 0, mtime: float = MTIME, linkname: str = "", xattrs: dict[str, bytes] | None = None,
            device: tuple[int, int] = (0, 0)) -> Layer:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
        info.linkname = linkname
        info.devmajor, info.devminor = device
        info.pax_headers = {f"SCHILY.xattr.{key}": value.decode("utf-8", "surrogateescape")
                            for key, value in (xattrs or {}).items()}
        return self.raw(info, data)

    def raw(self, info: tarfile.TarInfo, data: bytes = b"") -> Layer:
        """Add a header as it is (its size is set from ``data``)."""
        info.size = len(data)
        self._tar.addfile(info, io.BytesIO(data))
        return self

    def file(self, name: str, data: bytes = b"", **attrs: Any) -> Layer:
        return self.add(name, tarfile.REGTYPE, data, **attrs)

    def dir(self, name: str, **attrs: Any) -> Layer:
        return self.add(name, tarfile.DIRTYPE, **{"mode": 0o755, **attrs})

    def symlink(self, name: str, target: str, **attrs: Any) -> Layer:
        return self.add(name, tarfile.SYMTYPE, linkname=target, **{"mode": 0o777, **attrs})

    def hardlink(self, name: str, target: str) -> Layer:
        return self.add(name, tarfile.LNKTYPE, linkname=target)

    def fifo(self, name: str, **attrs: Any) -> Layer:
        return self.add(name, tarfile.FIFOTYPE, **attrs)

    def chardev(self, name: str, major: int, minor: int, **attrs: Any) -> Layer:
        return self.add(name, tarfile.CHRTYPE, device=(major, minor), **attrs)

    def tar(self) -> bytes:
        self._tar.close()
        return self._buffer.getvalue()


def plain(data: bytes) -> bytes:
    return data


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zstded(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


COMPRESSIONS = pytest.mark.parametrize("compress", [plain, gzipped, zstded], ids=["plain", "gzip", "zstd"])


def snapshot(root: Path, layer: Path) -> dict[str, tuple[object, ...]]:
    """Type, mode, owner, links, mtime, xattrs and content of every path under ``root`` but ``layer``."""
    seen: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [name for name in dirnames if here / name != layer]
        for name in [*dirnames, *filenames]:
            path = here / name
            info = path.lstat()
            content: object = None
            if stat.S_ISREG(info.st_mode):
                content = path.read_bytes()
            elif stat.S_ISLNK(info.st_mode):
                content = os.readlink(path)
            # The layer's parent legitimately changes as the layer directory comes and goes.
            changing = (info.st_nlink, info.st_mtime_ns) if path != layer.parent else ()
            xattrs = sorted(os.listxattr(path, follow_symlinks=False))
            seen[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, *changing, xattrs, content)
    return seen


@dataclass
class Site:
    root: Path  # the test's own tmp_path
    target: Path  # the layer directory apply_layer creates
    outside: Path  # a sentinel directory next to it, holding ``secret``
    before: dict[str, tuple[object, ...]]

    def apply(self, blob: bytes, *, limit: int = 1 << 30) -> LayerResult:
        return apply_layer(io.BytesIO(blob), self.target, max_inflated_bytes=limit)

    def inside(self, host_path: Path) -> Path:
        """Where an absolute ``host_path`` lands in the layer."""
        return self.target / host_path.relative_to("/")

    def assert_outside_untouched(self) -> None:
        assert snapshot(self.root, self.target) == self.before, "the layer changed something outside its directory"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o750)
    (outside / "secret").write_text("keep")
    (tmp_path / "layers").mkdir()
    target = tmp_path / "layers" / "layer"
    site = Site(tmp_path, target, outside, snapshot(tmp_path, target))
    yield site
    site.assert_outside_untouched()


def refused(site: Site, blob: bytes, match: str) -> UnsafeLayer:
    with pytest.raises(UnsafeLayer, match=match) as failure:
        site.apply(blob)
    assert not site.target.exists(), "a failed layer left its directory behind"
    site.assert_outside_untouched()
    return failure.value


# --- a normal layer -----------------------------------------------------------------------------------------------


@COMPRESSIONS
def test_a_layer_round_trips_with_all_its_metadata(site: Site, compress: Callable[[bytes], bytes]) -> None:
    tar = (Layer()
           .dir("./")
           .dir("home/user", mode=0o750, uid=1000, gid=1000, mtime=MTIME + 1)
           .file("home/user/notes", b"hello", mode=0o640, uid=1000, gid=1000, mtime=MTIME + 2,
                 xattrs={"user.note": b"kept"})
           .file("usr/bin/tool", b"\x7fELF", mode=0o4755, xattrs={"security.capability": NET_BIND_CAPABILITY})
           .file("usr/bin/group-tool", mode=0o2711, gid=50)
           .hardlink("usr/bin/tool-again", "usr/bin/tool")
           .symlink("usr/bin/passwd-link", "/etc/passwd", uid=1000, mtime=MTIME + 3)
           .symlink("bin", "usr/bin")
           .dir("tmp", mode=0o1777)
           .dir("opt", xattrs={"trusted.origin": b"layer"})
           .file("opt/fraction", mtime=MTIME + 0.25)
           .fifo("run/queue", mode=0o620)
           .chardev("dev/null", 1, 3, mode=0o666)
           .tar())

    result = site.apply(compress(tar))

    assert result == LayerResult(f"sha256:{hashlib.sha256(tar).hexdigest()}")
    root = site.target
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    home = (root / "home/user").stat()
    assert (stat.S_IMODE(home.st_mode), home.st_uid, home.st_gid) == (0o750, 1000, 1000)
    assert home.st_mtime_ns == (MTIME + 1) * NS, "a directory's mtime is set after its contents are written"
    notes = root / "home/user/notes"
    assert notes.read_bytes() == b"hello"
    assert (stat.S_IMODE(notes.stat().st_mode), notes.stat().st_uid, notes.stat().st_mtime_ns) == (
        0o640, 1000, (MTIME + 2) * NS)
    assert os.getxattr(notes, "user.note") == b"kept"
    tool = (root / "usr/bin/tool").stat()
    assert stat.S_IMODE(tool.st_mode) == 0o4755
    assert os.getxattr(root / "usr/bin/tool", "security.capability") == NET_BIND_CAPABILITY
    assert stat.S_IMODE((root / "usr/bin/group-tool").stat().st_mode) == 0o2711
    assert (root / "usr/bin/group-tool").stat().st_gid == 50
    assert (root / "usr/bin/tool-again").stat().st_ino == tool.st_ino
    assert tool.st_nlink == 2
    link = (root / "usr/bin/passwd-link").lstat()
    assert os.readlink(root / "usr/bin/passwd-link") == "/etc/passwd"
    assert (link.st_uid, link.st_mtime_ns) == (1000, (MTIME + 3) * NS)
    assert os.readlink(root / "bin") == "usr/bin"
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert os.getxattr(root / "opt", "trusted.origin") == b"layer"
    assert (root / "opt/fraction").stat().st_mtime_ns == MTIME * NS + NS // 4
    fifo = (root / "run/queue").lstat()
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    null = (root / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    implicit = (root / "run").stat()
    assert (stat.S_IMODE(implicit.st_mode), implicit.st_uid) == (0o755, 0)


@COMPRESSIONS
def test_the_diff_id_is_the_digest_of_the_whole_uncompressed_stream(
        site: Site, compress: Callable[[bytes], bytes]) -> None:
    # Padding after the end-of-archive blocks is part of the stream, and so of the digest.
    tar = Layer().file("a", b"a" * 3000).tar() + bytes(4096)

    result = site.apply(compress(tar), limit=len(tar))

    assert result.diff_id == f"sha256:{hashlib.sha256(tar).hexdigest()}"


@pytest.mark.parametrize("compress", [gzipped, zstded], ids=["gzip members", "zstd frames"])
def test_a_stream_of_several_members_or_frames_is_one_layer(site: Site, compress: Callable[[bytes], bytes]) -> None:
    tar = Layer().file("a", b"a" * 3000).file("b", b"b" * 3000).tar()
    blob = compress(tar[:2048]) + compress(tar[2048:])

    assert site.apply(blob).diff_id == f"sha256:{hashlib.sha256(tar).hexdigest()}"
    assert (site.target / "b").read_bytes() == b"b" * 3000


def test_names_keep_bytes_that_are_not_utf8(site: Site) -> None:
    site.apply(Layer().file("caf\udce9", b"x").tar())

    assert os.listdir(os.fsencode(site.target)) == [b"caf\xe9"]


def test_a_directory_after_its_contents_and_again_takes_the_last_metadata(site: Site) -> None:
    tar = (Layer()
           .file("d/early", b"1")
           .dir("d", mode=0o700, uid=1000, mtime=MTIME + 1)
           .dir("d", mode=0o711, uid=2000, mtime=MTIME + 2)
           .file("d/late", b"2")
           .tar())

    site.apply(tar)

    d = (site.target / "d").stat()
    assert (stat.S_IMODE(d.st_mode), d.st_uid, d.st_mtime_ns) == (0o711, 2000, (MTIME + 2) * NS)
    assert sorted(os.listdir(site.target / "d")) == ["early", "late"]


def test_a_later_entry_replaces_an_earlier_one_of_the_same_name(site: Site) -> None:
    tar = (Layer()
           .file("file-then-dir", b"x").dir("file-then-dir", mode=0o700)
           .dir("dir-then-file").file("dir-then-file/child", b"x").file("dir-then-file", b"now a file")
           .file("twice", b"first").file("twice", b"second", mode=0o600)
           .symlink("link-then-file", "twice").file("link-then-file", b"own data")
           .tar())

    site.apply(tar)

    root = site.target
    assert stat.S_IMODE((root / "file-then-dir").lstat().st_mode) == 0o700
    assert (root / "file-then-dir").is_dir()
    assert (root / "dir-then-file").read_bytes() == b"now a file"
    assert (root / "twice").read_bytes() == b"second"
    assert not (root / "link-then-file").is_symlink()
    assert (root / "link-then-file").read_bytes() == b"own data"


def test_a_parent_is_resolved_again_after_an_entry_replaced_part_of_its_path(site: Site) -> None:
    # "l/x" replaces the directory x that "l" resolved through; "l/y" must not reuse the old resolution.
    tar = Layer().symlink("l", "x/..").dir("x").file("l/x", b"now a file").file("l/y").tar()

    refused(site, tar, "layer entry 'l/y': 'x' is on the path but is not a directory")


def test_a_replaced_directory_keeps_none_of_the_times_of_the_old_one(site: Site) -> None:
    tar = (Layer()
           .dir("a/b", mtime=MTIME + 1)
           .file("a", b"replaces a/ and a/b/")
           .dir("a", mtime=MTIME + 2)
           .file("a/b/c")
           .tar())

    site.apply(tar)

    assert (site.target / "a").stat().st_mtime_ns == (MTIME + 2) * NS
    assert (site.target / "a/b").stat().st_mtime_ns != (MTIME + 1) * NS


def test_entries_after_a_replaced_directory_follow_what_replaced_it(site: Site) -> None:
    tar = (Layer()
           .file("a/b/before", b"1")
           .dir("elsewhere/b")
           .symlink("a", "elsewhere")  # replaces the directory a/ the entry before was written into
           .file("a/b/after", b"2")
           .tar())

    site.apply(tar)

    assert os.readlink(site.target / "a") == "elsewhere"
    assert (site.target / "elsewhere/b/after").read_bytes() == b"2"


# --- whiteouts ----------------------------------------------------------------------------------------------------


def test_a_whiteout_becomes_a_0_0_character_device(site: Site) -> None:
    site.apply(Layer().file(".wh.gone").dir("etc").file("etc/.wh.passwd", uid=1000).tar())

    for name in ("gone", "etc/passwd"):
        info = (site.target / name).lstat()
        assert stat.S_ISCHR(info.st_mode) and info.st_rdev == os.makedev(0, 0), name
    assert (site.target / "etc/passwd").lstat().st_uid == 1000
    assert not list(site.target.rglob(".wh.*"))


def test_an_opaque_marker_becomes_an_xattr_of_its_directory(site: Site) -> None:
    site.apply(Layer().dir("var").dir("var/lib").file("var/lib/.wh..wh..opq").file("var/.wh..wh.plnk").tar())

    assert os.getxattr(site.target / "var/lib", "trusted.overlay.opaque") == b"y"
    assert os.listdir(site.target / "var/lib") == []
    assert os.listdir(site.target / "var") == ["lib"], "other .wh..wh. entries are skipped"


def test_unpacked_layers_stack_with_overlayfs(tmp_path: Path) -> None:
    lower, upper, merged = tmp_path / "lower", tmp_path / "upper", tmp_path / "merged"
    apply_layer(io.BytesIO(Layer().file("gone", b"x").file("etc/a", b"a").file("etc/b", b"b").tar()), lower,
                max_inflated_bytes=1 << 20)
    apply_layer(io.BytesIO(Layer().file(".wh.gone").file("etc/.wh..wh..opq").file("etc/c", b"c").tar()), upper,
                max_inflated_bytes=1 << 20)
    merged.mkdir()
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={upper}:{lower}", str(merged)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount overlayfs here: {mounted.stderr.strip()}")
    try:
        assert os.listdir(merged) == ["etc"]
        assert os.listdir(merged / "etc") == ["c"]
    finally:
        subprocess.run(["umount", str(merged)], check=True)


# --- no way out ---------------------------------------------------------------------------------------------------


def test_an_absolute_name_lands_inside_the_layer(site: Site) -> None:
    site.apply(Layer().file(f"{site.outside}/planted", b"x").tar())

    assert (site.inside(site.outside) / "planted").read_bytes() == b"x"


def test_dot_dot_is_clamped_at_the_layer_root(site: Site) -> None:
    site.apply(Layer().file("../../outside/planted", b"x").file("a/../../../b", b"y").tar())

    assert (site.target / "outside/planted").read_bytes() == b"x"
    assert (site.target / "b").read_bytes() == b"y"


@pytest.mark.parametrize("link", ["/", "../../", "../../outside/..", "/../.."])
def test_a_symlink_upwards_is_resolved_inside_the_layer(site: Site, link: str) -> None:
    # Were the link followed on the host, "escape/<...>/planted" would land in the sentinel directory.
    through = site.outside.relative_to("/") if link.startswith("/") else "outside"
    site.apply(Layer().symlink("escape", link).file(f"escape/{through}/planted", b"x").tar())

    assert (site.target / through / "planted").read_bytes() == b"x"
    assert os.readlink(site.target / "escape") == link


def test_a_symlink_to_an_outside_directory_is_resolved_inside_the_layer(site: Site) -> None:
    tar = (Layer()
           .symlink("out", str(site.outside))
           .file("out/planted", b"x")
           .file("f", b"f")
           .hardlink("out/hard", "f")
           .fifo("out/fifo")
           .dir("out/dir", mode=0o777)
           .tar())

    site.apply(tar)

    moved = site.inside(site.outside)
    assert (moved / "planted").read_bytes() == b"x"
    assert (moved / "hard").stat().st_ino == (site.target / "f").stat().st_ino
    assert stat.S_ISFIFO((moved / "fifo").lstat().st_mode)
    assert (moved / "dir").is_dir()


def test_a_hard_link_through_a_symlink_to_an_outside_file_is_refused(site: Site) -> None:
    tar = Layer().symlink("out", str(site.outside)).hardlink("stolen", "out/secret").tar()

    refused(site, tar, r"'stolen'.*hard link target 'out/secret' is not an entry of this layer")


@pytest.mark.parametrize("linkname", ["../../outside/secret", "{outside}/secret", "missing"])
def test_a_hard_link_to_anything_but_an_entry_of_the_layer_is_refused(site: Site, linkname: str) -> None:
    tar = Layer().hardlink("stolen", linkname.format(outside=site.outside)).tar()

    refused(site, tar, "'stolen'.*not an entry of this layer")


def test_a_hard_link_to_a_directory_is_refused(site: Site) -> None:
    refused(site, Layer().dir("d").hardlink("alias", "d").tar(), "'alias'.*is a directory")


def test_a_hard_link_to_a_symlink_links_the_symlink_itself(site: Site) -> None:
    site.apply(Layer().symlink("link", f"{site.outside}/secret").hardlink("hard", "link").tar())

    hard = (site.target / "hard").lstat()
    assert stat.S_ISLNK(hard.st_mode)
    assert hard.st_ino == (site.target / "link").lstat().st_ino
    assert (site.outside / "secret").stat().st_nlink == 1


@pytest.mark.parametrize("replacement", ["file", "dir", "fifo", "symlink", "hardlink", "whiteout"])
def test_an_entry_replaces_a_symlink_to_the_outside_instead_of_going_through_it(
        site: Site, replacement: str) -> None:
    layer = Layer().file("data", b"new").symlink("secret", f"{site.outside}/secret")
    layer = layer.symlink("dir", str(site.outside))
    name = {"dir": "dir"}.get(replacement, "secret")
    match replacement:
        case "file":
            layer.file(name, b"new", mode=0o4777, uid=1000)
        case "dir":
            layer.dir(name, mode=0o777, uid=1000)
        case "fifo":
            layer.fifo(name, mode=0o777, uid=1000)
        case "symlink":
            layer.symlink(name, "data", uid=1000)
        case "hardlink":
            layer.hardlink(name, "data")
        case "whiteout":
            layer.file(f".wh.{name}", uid=1000)

    site.apply(layer.tar())

    assert not (site.target / name).is_symlink() or replacement == "symlink"
    site.assert_outside_untouched()


@pytest.mark.parametrize("name", [".wh..", ".wh...", "a/.wh.", "a/.wh..", "a/.wh..."])
def test_a_whiteout_that_names_no_entry_is_refused(site: Site, name: str) -> None:
    refused(site, Layer().dir("a").file(name).tar(), "whiteout .* names no entry")


def test_whiteouts_through_a_symlink_to_the_outside_stay_inside(site: Site) -> None:
    site.apply(Layer().symlink("out", str(site.outside)).file("out/.wh.secret").file("out/.wh..wh..opq").tar())

    moved = site.inside(site.outside)
    assert stat.S_ISCHR((moved / "secret").lstat().st_mode)
    assert os.getxattr(moved, "trusted.overlay.opaque") == b"y"


def test_a_symlink_loop_is_refused(site: Site) -> None:
    refused(site, Layer().symlink("a", "b").symlink("b", "a").file("a/x").tar(), "'a/x'.*too many levels")


def test_a_path_through_a_file_is_refused(site: Site) -> None:
    refused(site, Layer().file("f", b"x").file("f/x").tar(), "'f/x'.*'f' is on the path but is not a directory")


def test_the_layer_root_itself_cannot_be_changed(site: Site) -> None:
    site.apply(Layer().dir(".", mode=0o777, uid=1000).dir("..", mode=0o777).dir("/", mode=0o700).tar())

    root = site.target.stat()
    assert (stat.S_IMODE(root.st_mode), root.st_uid) == (0o755, 0)
    site.target.rmdir()
    refused(site, Layer().file("..", b"x").tar(), "only a directory may name the layer root")


# --- what is refused ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [tarfile.GNUTYPE_SPARSE, b"V", b"Q"], ids=["gnu sparse", "volume header", "unknown"])
def test_an_unsupported_entry_type_is_refused_by_name(site: Site, kind: bytes) -> None:
    refused(site, Layer().file("ok").add("odd-one", kind).tar(), "layer entry 'odd-one': (sparse|unsupported)")


def test_a_pax_sparse_file_is_refused_by_name(site: Site) -> None:
    sparse = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "holes", "GNU.sparse.realsize": "9"}
    info = tarfile.TarInfo("GNUSparseFile.0/holes")
    info.pax_headers = sparse
    # The map claims a million regions: it must be refused before tarfile starts reading it.
    tar = Layer().file("ok").raw(info, b"1000000\n".ljust(512, b"\0")).tar()

    refused(site, tar, "layer entry 'holes': sparse files are not supported")


def test_an_oversized_extended_header_is_refused(site: Site) -> None:
    info = tarfile.TarInfo("padded")
    info.pax_headers = {"comment": "x" * (2 << 20)}

    refused(site, gzipped(Layer().file("ok").raw(info).tar()),
            r"extended header of \d+ bytes \(the limit is 1048576 bytes\)")


def test_a_path_too_deep_is_refused(site: Site) -> None:
    refused(site, Layer().file("d/" * 512 + "f").tar(), "more than 512 directories deep")
    site.apply(Layer().file("d/" * 511 + "f").tar())


def test_xattrs_for_overlayfs_are_dropped_and_user_xattrs_on_symlinks_skipped(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    tar = (Layer()
           .dir("d", xattrs={"trusted.overlay.opaque": b"y", "user.kept": b"1"})
           .symlink("s", "d", xattrs={"user.refused": b"1", "trusted.kept": b"2"})
           .tar())

    site.apply(tar)

    assert os.listxattr(site.target / "d") == ["user.kept"]
    assert os.listxattr(site.target / "s", follow_symlinks=False) == ["trusted.kept"]
    assert "trusted.overlay.opaque" in caplog.text and "user.refused" in caplog.text


def test_a_layer_inflating_past_the_limit_is_refused(site: Site) -> None:
    bomb = gzipped(Layer().file("zeros", bytes(10 << 20)).tar())

    with pytest.raises(LayerTooLarge, match=r"limit of 1048576 bytes .*'zeros'"):
        site.apply(bomb, limit=1 << 20)
    assert not site.target.exists()


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data


@COMPRESSIONS
def test_the_limit_stops_reading_early(site: Site, compress: Callable[[bytes], bytes]) -> None:
    blob = CountingReader(compress(Layer().file("text", os.urandom(4 << 20).hex().encode()).tar()))

    with pytest.raises(LayerTooLarge):
        apply_layer(blob, site.target, max_inflated_bytes=1 << 20)
    assert blob.consumed < len(blob.getvalue()) // 2
    assert not site.target.exists()


TAR = Layer().file("a", b"a" * 5000).file("b", b"b" * 5000).tar()  # headers at 0 and 5632
BROKEN_STREAMS = {
    "empty": b"",
    "tar cut inside data": TAR[:1500],
    "tar cut inside a header": TAR[:5632 + 100],
    "tar with a garbled header": TAR[:5632] + b"\x01" * 512 + bytes(1024),
    "gzip corrupted": (lambda gz: gz[:40] + bytes([gz[40] ^ 0xFF]) + gz[41:])(gzipped(TAR)),
    "gzip cut short": gzipped(TAR)[:-10],
    "gzip with garbage after": gzipped(TAR) + b"garbage",
    "zstd corrupted": (lambda zs: zs[:-6] + bytes([zs[-6] ^ 0xFF]) + zs[-5:])(zstded(TAR)),
    "zstd cut inside a frame": zstded(TAR)[:-3],
    "zstd cut inside its header": zstded(TAR)[:5],
    "zstd with garbage after": zstded(TAR) + b"garbage",
}


@pytest.mark.parametrize("blob", BROKEN_STREAMS.values(), ids=BROKEN_STREAMS.keys())
def test_a_corrupt_or_cut_stream_is_refused_and_leaves_nothing(site: Site, blob: bytes) -> None:
    refused(site, blob, r"layer is not a valid (tar|gzip|zstd) stream")


def test_a_tar_cut_after_an_entry_names_the_last_good_one(site: Site) -> None:
    refused(site, TAR[:5632 + 100], r"valid tar stream: .*the tar header after entry 'a'")


def test_a_read_error_leaves_nothing_behind(site: Site) -> None:
    class FailingReader(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 2048:
                raise OSError(errno.EIO, "disk on fire")
            return super().read(size)

    with pytest.raises(errors.Internal, match="disk on fire"):
        apply_layer(FailingReader(TAR), site.target, max_inflated_bytes=1 << 20)
    assert not site.target.exists()


def test_an_existing_target_is_left_alone(site: Site) -> None:
    site.target.mkdir()
    (site.target / "mine").write_text("x")

    with pytest.raises(errors.AlreadyExists):
        site.apply(TAR)
    assert (site.target / "mine").read_text() == "x"
