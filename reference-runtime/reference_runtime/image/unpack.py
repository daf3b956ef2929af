"""Apply one OCI layer (a tar, plain, gzip or zstd) to a new directory, as an overlayfs lower directory.

Every layer is unpacked into a directory of its own and the runtime stacks those directories with overlayfs, so
the OCI whiteouts of a layer are turned into the overlayfs form:

* ``<dir>/.wh.<name>`` (of any entry type) hides ``<dir>/<name>`` of the layers below. It becomes a character
  device 0/0 named ``<name>`` (owned as the entry says), which is overlayfs's own whiteout.
* ``<dir>/.wh..wh..opq`` makes ``<dir>`` opaque: nothing of the layers below shows through it. ``<dir>`` gets the
  xattr ``trusted.overlay.opaque=y``; the marker itself is not created.
* Any other ``.wh..wh.*`` name is bookkeeping of other tools (AUFS hard-link directories) and is skipped.

Path resolution. The tar is untrusted: whatever it says, nothing outside the target may be created, changed,
chowned or chmodded. ``tarfile`` only parses headers and hands out member data; every filesystem operation is made
here, relative to open directory descriptors:

* An entry name is relative to the layer root (a leading ``/`` is dropped) and cleaned lexically with ``..``
  clamped at the root, as containerd applies layers: ``../../etc/passwd`` means ``<target>/etc/passwd``.
* The parent directories are opened one component at a time with ``O_NOFOLLOW | O_DIRECTORY``, missing ones
  created (0755, owned by root). A component that is a symlink (made by an earlier entry of this layer) is
  resolved like securejoin does: its target is read as text and walked again under the layer root, an absolute
  target starting over at the root and ``..`` clamped there, at most 40 links in all and 512 directories deep.
  The kernel never follows a link for us, so no link can lead out of the root. Hard-link targets are resolved the
  same way, without creating anything, and must name an entry already unpacked in this layer.
* The last component is never followed. An entry replaces whatever an earlier entry left under its name (a
  directory meeting a directory only takes the new metadata); files are created ``O_CREAT | O_EXCL | O_NOFOLLOW``.
  A symlink's target is only stored, as text, and may name anything.

An entry that resolves to the root itself is skipped if it is a directory (most layers start with ``./``; like
containerd, the root keeps its mode 0755) and refused otherwise.

Xattrs (PAX ``SCHILY.xattr.*`` records) are set after owner and mode, since chown drops ``security.capability``.
``trusted.overlay.*`` and ``user.overlay.*`` ones are dropped: only whiteout entries may tell overlayfs what to hide.
A name the filesystem does not support (EOPNOTSUPP), and a ``user.*`` one on a symlink or special file (EPERM: the
kernel allows them on regular files and directories only), are skipped with a warning; any other refusal fails the
layer, since a ``security.*`` or ``trusted.*`` xattr the image asks for is not ours to drop.

A tar that ends cleanly at an entry boundary without the end-of-archive blocks is accepted, as Go's archive/tar does;
one cut inside a header or inside member data is not. Its diff ID tells the caller whether it is the layer the
image config names. Sparse files, and PAX or GNU long-name headers over 1 MiB, are refused before ``tarfile``
builds them up in memory.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import shutil
import stat
import tarfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import zstandard

from reference_runtime import errors

log = logging.getLogger("reference_runtime.image")

CHUNK_SIZE = 1 << 20
MAX_SYMLINK_HOPS = 40
MAX_DEPTH = 512  # directories deep; keeps removing a layer (shutil.rmtree recurses) within Python's stack
MAX_EXTENDED_HEADER_BYTES = 1 << 20  # a PAX or GNU long-name header; Go's archive/tar has the same limit
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR_PREFIX = "SCHILY.xattr."
DROPPED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SPECIAL_KINDS = {tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK, tarfile.FIFOTYPE: stat.S_IFIFO}
_SUPPORTED_TYPES = {*tarfile.REGULAR_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, *_SPECIAL_KINDS}
_EXTENDED_HEADER_TYPES = {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                          tarfile.GNUTYPE_LONGLINK}
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)
# Errors an entry's own content provokes (a path through a file, a name too long...), as opposed to the host's.
_CONTENT_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EINVAL,
                   errno.EMLINK, errno.ERANGE, errno.E2BIG, errno.EEXIST}

_T = TypeVar("_T")


@dataclass(frozen=True)
class LayerResult:
    diff_id: str  # "sha256:<hex>" of the uncompressed tar stream (the OCI diff ID)


class UnsafeLayer(errors.InvalidArgument):
    """A tar entry that cannot be applied safely, or a layer that is not a valid (compressed) tar."""


class LayerTooLarge(errors.ResourceExhausted):
    """The layer inflated past the limit it was given."""


def apply_layer(blob: BinaryIO, target: Path, *, max_inflated_bytes: int) -> LayerResult:
    """Unpack the layer ``blob`` (read sequentially) into the new directory ``target``.

    On any failure nothing is left at ``target``; the error names the entry at fault.
    """
    try:
        os.mkdir(target, 0o755)
    except FileExistsError:
        raise errors.AlreadyExists(f"layer directory {target} already exists") from None
    try:
        return _unpack(blob, target, max_inflated_bytes)
    except BaseException:
        _discard(target)
        raise


def _unpack(blob: BinaryIO, target: Path, max_inflated_bytes: int) -> LayerResult:
    root_fd = os.open(target, _DIR_FLAGS)
    unpacker = _Unpacker(root_fd)
    try:
        os.fchmod(root_fd, 0o755)  # mkdir's mode went through the umask
        with _blame("the start of the layer"):
            stream, kind = _open_layer_stream(blob)
        meter = _Meter(stream, kind, max_inflated_bytes)
        unpacker.run(meter)
    finally:
        unpacker.close()
        os.close(root_fd)
    return LayerResult(diff_id=meter.diff_id)


def _discard(target: Path) -> None:
    try:
        shutil.rmtree(target)  # never follows symlinks
    except Exception:  # the failure that got us here is the one to report
        log.exception("could not remove the partly unpacked layer %s", target)


# --- the decompressed stream -----------------------------------------------------------------------------------


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _BadStream(Exception):
    """The compressed stream is corrupt or cut short (the message says which format)."""


class _Prefixed:
    """``rest``, with the bytes already read from it to sniff the format put back in front."""

    def __init__(self, head: bytes, rest: _Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            head, self._head = self._head, b""
            return head + self._rest.read(-1)
        head, self._head = self._head[:size], self._head[size:]
        return head


def _open_layer_stream(blob: _Readable) -> tuple[_Readable, str]:
    """The uncompressed tar stream of ``blob`` and the format it came in, told by its magic bytes."""
    head = b""
    while len(head) < len(_ZSTD_MAGIC) and (chunk := blob.read(len(_ZSTD_MAGIC) - len(head))):
        head += chunk
    source = _Prefixed(head, blob)
    if head.startswith(_GZIP_MAGIC):
        return gzip.GzipFile(fileobj=source, mode="rb"), "gzip"
    if head == _ZSTD_MAGIC:
        return _ZstdReader(source), "zstd"
    return source, "tar"


class _Meter:
    """Reads the uncompressed stream for ``tarfile``: counts it, hashes it, and stops it at the limit."""

    def __init__(self, stream: _Readable, kind: str, limit: int) -> None:
        self._stream = stream
        self._kind = kind
        self._limit = limit
        self._digest = hashlib.sha256()
        self.total = 0

    def read(self, size: int) -> bytes:
        try:
            data = self._stream.read(size)
        except _DECOMPRESSION_ERRORS as exc:
            raise _BadStream(f"layer is not a valid {self._kind} stream: {exc}") from exc
        self.total += len(data)
        if self.total > self._limit:
            raise LayerTooLarge(f"layer inflates past the limit of {self._limit} bytes")
        self._digest.update(data)
        return data

    def drain(self) -> None:
        """Read to the end (the padding after the end-of-archive blocks is part of the diff ID)."""
        while self.read(CHUNK_SIZE):
            pass

    @property
    def diff_id(self) -> str:
        return f"sha256:{self._digest.hexdigest()}"


class _ZstdReader:
    """Decompresses a zstd stream of any number of frames, refusing one that stops inside a frame."""

    def __init__(self, source: _Readable) -> None:
        self._frames = _ZstdFrames()
        self._source = _Watched(source, self._frames)
        self._reader = zstandard.ZstdDecompressor().stream_reader(self._source, read_across_frames=True)

    def read(self, size: int) -> bytes:
        data = self._reader.read(size)
        if not data:
            self._frames.check_complete()
            if self._source.read(1):
                raise _BadStream("layer is not a valid zstd stream: data after its last frame")
        return data


class _Watched:
    """Passes the compressed bytes through, showing them to a ``_ZstdFrames`` on the way."""

    def __init__(self, source: _Readable, frames: _ZstdFrames) -> None:
        self._source = source
        self._frames = frames

    def read(self, size: int) -> bytes:
        data = self._source.read(size)
        self._frames.feed(data)
        return data


class _ZstdFrames:
    """Follows the frame and block headers of a zstd stream, to tell a whole stream from a cut one.

    The decompressor reports corrupt data, but when its input just stops inside a frame it reports a clean end.
    Only headers are parsed; block contents are counted past.
    """

    def __init__(self) -> None:
        self._field = bytearray()
        self._field_size = 4
        self._on_field: Callable[[bytes], None] = self._magic
        self._skip = 0
        self._checksum = False
        self._in_frame = False
        self._frames = 0

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            step = min(self._field_size - len(self._field), end - pos)
            self._field += data[pos:pos + step]
            pos += step
            if len(self._field) == self._field_size:
                field = bytes(self._field)
                self._field.clear()
                self._on_field(field)

    def check_complete(self) -> None:
        if self._in_frame or self._skip or self._field or not self._frames:
            raise _BadStream("layer is not a valid zstd stream: it ends inside a frame")

    def _expect(self, size: int, handler: Callable[[bytes], None]) -> None:
        self._field_size = size
        self._on_field = handler

    def _magic(self, field: bytes) -> None:
        magic = int.from_bytes(field, "little")
        self._in_frame = True
        if magic == 0xFD2FB528:
            self._expect(1, self._descriptor)
        elif magic & 0xFFFFFFF0 == 0x184D2A50:
            self._expect(4, self._skippable)
        else:
            raise _BadStream(f"layer is not a valid zstd stream: unknown frame magic {field.hex()}")

    def _skippable(self, field: bytes) -> None:
        self._skip = int.from_bytes(field, "little")
        self._end_frame()

    def _descriptor(self, field: bytes) -> None:
        descriptor = field[0]
        single_segment = bool(descriptor & 0x20)
        self._checksum = bool(descriptor & 0x04)
        window = 0 if single_segment else 1
        dictionary_id = (0, 1, 2, 4)[descriptor & 0x03]
        content_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
        self._expect(window + dictionary_id + content_size, self._frame_header)

    def _frame_header(self, _field: bytes) -> None:
        self._expect(3, self._block)

    def _block(self, field: bytes) -> None:
        header = int.from_bytes(field, "little")
        kind = (header >> 1) & 0x03
        if kind == 3:
            raise _BadStream("layer is not a valid zstd stream: reserved block type")
        self._skip = 1 if kind == 1 else header >> 3  # an RLE block holds one byte, whatever size it inflates to
        if not header & 0x01:
            self._expect(3, self._block)
        elif self._checksum:
            self._expect(4, self._frame_checksum)
        else:
            self._end_frame()

    def _frame_checksum(self, _field: bytes) -> None:
        self._end_frame()

    def _end_frame(self) -> None:
        self._in_frame = False
        self._frames += 1
        self._expect(4, self._magic)


class _RefusedHeader(Exception):
    """A header ``tarfile`` must not go on processing, for the entry ``name``."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(reason)
        self.name = name


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo that fails where ``tarfile`` would be lenient or lavish.

    * A header after the first one that is cut short or garbled: ``tarfile`` quietly ends the archive there, Go's
      archive/tar (which containerd uses) reports it.
    * Extended headers over ``MAX_EXTENDED_HEADER_BYTES`` and sparse maps: ``tarfile`` holds them in memory whatever
      their size, and they compress well.
    """

    __slots__ = ()

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(archive)
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as exc:
            raise tarfile.ReadError(f"bad tar header: {exc}") from None

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_HEADER_TYPES and self.size > MAX_EXTENDED_HEADER_BYTES:
            raise tarfile.ReadError(f"an extended header of {self.size} bytes "
                                    f"(the limit is {MAX_EXTENDED_HEADER_BYTES} bytes)")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise _RefusedHeader(self.name, "sparse files are not supported")
        return super()._proc_member(archive)

    def _proc_gnusparse_10(self, member: tarfile.TarInfo, pax_headers: dict[str, str],
                           archive: tarfile.TarFile) -> None:
        raise _RefusedHeader(pax_headers.get("GNU.sparse.name", member.name), "sparse files are not supported")


# --- failures ----------------------------------------------------------------------------------------------------


@contextmanager
def _blame(where: str) -> Iterator[None]:
    """Turn a failure inside the block into the runtime error a client sees, naming ``where`` it happened."""
    try:
        yield
    except Exception as exc:
        failure = _describe(exc, where)
        if failure is None:
            raise
        raise failure from exc


def _describe(exc: Exception, where: str) -> errors.Error | None:
    if isinstance(exc, UnsafeLayer):
        return UnsafeLayer(f"{where}: {exc}")
    if isinstance(exc, _RefusedHeader):
        return UnsafeLayer(f"layer entry {exc.name!r}: {exc}")
    if isinstance(exc, LayerTooLarge):
        return LayerTooLarge(f"{exc} (while reading {where})")
    if isinstance(exc, _BadStream):
        return UnsafeLayer(f"{exc} (at {where})")
    if isinstance(exc, tarfile.TarError):
        return UnsafeLayer(f"layer is not a valid tar stream: {exc} (at {where})")
    if isinstance(exc, OSError):
        return _os_failure(exc, where)
    if isinstance(exc, ValueError | OverflowError):
        return UnsafeLayer(f"{where}: invalid metadata: {exc}")
    return None


def _os_failure(exc: OSError, where: str) -> errors.Error:
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        reason += f": {exc.filename!r}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return errors.ResourceExhausted(f"unpacking {where}: {reason}")
    if exc.errno in _CONTENT_ERRNOS:
        return UnsafeLayer(f"{where} cannot be applied: {reason}")
    return errors.Internal(f"unpacking {where}: {reason}")


# --- applying entries ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Slot:
    """Where an entry goes: an open directory under the root, and a name in it."""

    parent_fd: int
    parent_real: tuple[str, ...]  # the directory's path under the root, symlinks resolved
    name: str

    @property
    def real(self) -> tuple[str, ...]:
        return (*self.parent_real, self.name)

    @property
    def proc_path(self) -> str:
        """A path to the entry through its pinned parent, for the calls that take no directory fd."""
        return f"/proc/self/fd/{self.parent_fd}/{self.name}"


@dataclass(frozen=True, slots=True)
class _OpenDir:
    lexical: tuple[str, ...]
    fd: int
    real: tuple[str, ...]


class _Unpacker:
    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        # Entries mostly come grouped by directory: the last parent resolved stays open for the next entry.
        self._last_dir: _OpenDir | None = None
        self._stale = False  # something was removed: the open parent may no longer be what its name resolves to
        self._dir_times = _DirTimes()
        self._skipped_xattrs: set[str] = set()

    def close(self) -> None:
        self._forget_last_dir()

    def run(self, meter: _Meter) -> None:
        with _blame("the first tar header"):
            tar = _open_tar(meter)
        with tar:
            self._apply_all(tar)
        with _blame("the data after the end of the tar archive"):
            meter.drain()
        with _blame("the directory times"):
            self._apply_dir_times()

    def _apply_all(self, tar: tarfile.TarFile) -> None:
        where = "the first tar header"
        while True:
            with _blame(where):
                member = tar.next()
            if member is None:
                return
            tar.members.clear()  # a stream needs no index of what it has read: memory stays flat
            with _blame(f"layer entry {member.name!r}"):
                self._apply(tar, member)
            where = f"the tar header after entry {member.name!r}"

    def _apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        _check_supported(member)
        parts = _clean(member.name)
        if not parts:
            if member.isdir():
                return
            raise UnsafeLayer("only a directory may name the layer root")
        if parts[-1].startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        slot = self._slot(parts[:-1], parts[-1])
        if member.isdir():
            self._directory(member, slot, tuple(parts))
        elif member.isreg():
            self._regular(tar, member, slot)
        elif member.issym():
            self._symlink(member, slot)
        elif member.islnk():
            self._hardlink(member, slot)
        else:
            self._special(member, slot)

    # --- entry types ---

    def _regular(self, tar: tarfile.TarFile, member: tarfile.TarInfo, slot: _Slot) -> None:
        source = tar.extractfile(member)
        if source is None:
            raise UnsafeLayer("no data for a regular file")
        fd = self._create(slot, lambda: os.open(slot.name, _FILE_FLAGS, 0o600, dir_fd=slot.parent_fd))
        try:
            with source:
                _copy(source, fd)
            # Data first, then owner, mode and xattrs: a write or a chown drops setuid bits and file capabilities.
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, _mode(member))
            self._set_xattrs(fd, member, special=False)
            os.utime(fd, ns=_times(member))
        finally:
            os.close(fd)

    def _directory(self, member: tarfile.TarInfo, slot: _Slot, lexical: tuple[str, ...]) -> None:
        fd = self._make_dir(slot)
        try:
            os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, _mode(member))
            self._set_xattrs(fd, member, special=False)
        except BaseException:
            os.close(fd)
            raise
        self._dir_times.set(slot.real, _times(member))
        if self._stale:
            os.close(fd)
        else:
            self._remember(_OpenDir(lexical, fd, slot.real))

    def _make_dir(self, slot: _Slot) -> int:
        try:
            os.mkdir(slot.name, 0o700, dir_fd=slot.parent_fd)
        except FileExistsError:
            try:
                return os.open(slot.name, _DIR_FLAGS, dir_fd=slot.parent_fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
            self._remove(slot)
            os.mkdir(slot.name, 0o700, dir_fd=slot.parent_fd)
        return os.open(slot.name, _DIR_FLAGS, dir_fd=slot.parent_fd)

    def _symlink(self, member: tarfile.TarInfo, slot: _Slot) -> None:
        self._create(slot, lambda: os.symlink(member.linkname, slot.name, dir_fd=slot.parent_fd))
        os.chown(slot.name, member.uid, member.gid, dir_fd=slot.parent_fd, follow_symlinks=False)
        self._set_xattrs(slot.proc_path, member, special=True)
        os.utime(slot.name, ns=_times(member), dir_fd=slot.parent_fd, follow_symlinks=False)

    def _hardlink(self, member: tarfile.TarInfo, slot: _Slot) -> None:
        """Link to an entry of this layer; the header's metadata is ignored, the inode keeps its own."""
        source = _clean(member.linkname)
        if not source:
            raise UnsafeLayer("a hard link to the layer root")
        missing = UnsafeLayer(f"hard link target {member.linkname!r} is not an entry of this layer")
        try:
            source_fd, _ = self._walk(source[:-1], create=False)
        except FileNotFoundError:
            raise missing from None
        try:
            self._create(slot, lambda: os.link(source[-1], slot.name, src_dir_fd=source_fd,
                                               dst_dir_fd=slot.parent_fd, follow_symlinks=False))
        except FileNotFoundError:
            raise missing from None
        except PermissionError:
            if stat.S_ISDIR(os.stat(source[-1], dir_fd=source_fd, follow_symlinks=False).st_mode):
                raise UnsafeLayer(f"hard link target {member.linkname!r} is a directory") from None
            raise
        finally:
            os.close(source_fd)

    def _special(self, member: tarfile.TarInfo, slot: _Slot) -> None:
        kind = _SPECIAL_KINDS[member.type]
        device = 0 if kind == stat.S_IFIFO else os.makedev(member.devmajor, member.devminor)
        self._create(slot, lambda: os.mknod(slot.name, kind | 0o600, device, dir_fd=slot.parent_fd))
        os.chown(slot.name, member.uid, member.gid, dir_fd=slot.parent_fd, follow_symlinks=False)
        _chmod_no_follow(slot, _mode(member))
        self._set_xattrs(slot.proc_path, member, special=True)
        os.utime(slot.name, ns=_times(member), dir_fd=slot.parent_fd, follow_symlinks=False)

    def _whiteout(self, member: tarfile.TarInfo, parts: list[str]) -> None:
        marker = parts[-1]
        if marker == OPAQUE_MARKER:
            parent_fd, _ = self._parent(parts[:-1])
            os.setxattr(parent_fd, OPAQUE_XATTR, b"y")
            return
        hidden = marker.removeprefix(WHITEOUT_PREFIX)
        if hidden.startswith(WHITEOUT_PREFIX):
            return
        if hidden in ("", ".", ".."):
            raise UnsafeLayer(f"whiteout {marker!r} names no entry")
        slot = self._slot(parts[:-1], hidden)
        self._create(slot, lambda: os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=slot.parent_fd))
        os.chown(hidden, member.uid, member.gid, dir_fd=slot.parent_fd, follow_symlinks=False)

    # --- metadata ---

    def _set_xattrs(self, target: int | str, member: tarfile.TarInfo, *, special: bool) -> None:
        """Set the entry's xattrs on ``target``: an open fd, or a path whose last component is not followed."""
        for key, value in member.pax_headers.items():
            if not key.startswith(PAX_XATTR_PREFIX):
                continue
            name = key.removeprefix(PAX_XATTR_PREFIX)
            if name.startswith(DROPPED_XATTR_PREFIXES):
                self._skip_xattr(name, member, "overlayfs metadata is not taken from a layer")
                continue
            raw = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, raw)
                else:
                    os.setxattr(target, name, raw, follow_symlinks=False)
            except OSError as exc:
                refused_user = exc.errno == errno.EPERM and special and name.startswith("user.")
                if exc.errno != errno.EOPNOTSUPP and not refused_user:
                    raise
                self._skip_xattr(name, member, exc.strerror)

    def _skip_xattr(self, name: str, member: tarfile.TarInfo, reason: str) -> None:
        if name not in self._skipped_xattrs:
            self._skipped_xattrs.add(name)
            log.warning("ignoring xattr %s of layer entry %r (and any later one of that name): %s",
                        name, member.name, reason)

    def _apply_dir_times(self) -> None:
        for real, times in self._dir_times.items():
            fd = self._open_real(real)
            try:
                os.utime(fd, ns=times)
            finally:
                os.close(fd)

    # --- placing entries ---

    def _create(self, slot: _Slot, make: Callable[[], _T]) -> _T:
        """``make()`` the entry; if its name is taken, remove what is there and make it again."""
        try:
            return make()
        except FileExistsError:
            pass
        self._remove(slot)
        return make()

    def _remove(self, slot: _Slot) -> None:
        mode = os.stat(slot.name, dir_fd=slot.parent_fd, follow_symlinks=False).st_mode
        self._stale = True
        self._dir_times.forget(slot.real)
        if stat.S_ISDIR(mode):
            shutil.rmtree(slot.name, dir_fd=slot.parent_fd)
        else:
            os.unlink(slot.name, dir_fd=slot.parent_fd)

    def _slot(self, parent: list[str], name: str) -> _Slot:
        parent_fd, parent_real = self._parent(parent)
        return _Slot(parent_fd, parent_real, name)

    def _parent(self, parts: list[str]) -> tuple[int, tuple[str, ...]]:
        """Open (creating it if need be) the directory ``parts`` names; the fd stays ours until the next call."""
        if self._stale:
            self._forget_last_dir()
            self._stale = False
        lexical = tuple(parts)
        if self._last_dir is None or self._last_dir.lexical != lexical:
            fd, real = self._walk(parts, create=True)
            self._remember(_OpenDir(lexical, fd, real))
        assert self._last_dir is not None
        return self._last_dir.fd, self._last_dir.real

    def _remember(self, opened: _OpenDir) -> None:
        self._forget_last_dir()
        self._last_dir = opened

    def _forget_last_dir(self) -> None:
        if self._last_dir is not None:
            os.close(self._last_dir.fd)
            self._last_dir = None

    def _walk(self, parts: Iterable[str], *, create: bool) -> tuple[int, tuple[str, ...]]:
        """Open the directory ``parts`` names under the root, resolving symlinks inside the root only.

        Returns the fd (the caller closes it) and the directory's real path under the root.
        """
        pending = deque(parts)
        real: list[str] = []
        fd = os.dup(self._root)
        hops = 0
        try:
            while pending:
                part = pending.popleft()
                if part in ("", "."):
                    continue
                if part == "..":
                    if real:
                        real.pop()
                        os.close(fd)
                        fd = -1
                        fd = self._open_real(real)
                    continue
                child = self._open_child(fd, part, create=create)
                if child is not None:
                    os.close(fd)
                    fd = child
                    real.append(part)
                    if len(real) >= MAX_DEPTH:
                        raise UnsafeLayer(f"the path is more than {MAX_DEPTH} directories deep")
                    continue
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise UnsafeLayer(f"too many levels of symbolic links at {part!r}")
                link = os.readlink(part, dir_fd=fd)
                if link.startswith("/"):
                    real.clear()
                    os.close(fd)
                    fd = -1
                    fd = os.dup(self._root)
                pending.extendleft(reversed(link.split("/")))
            return fd, tuple(real)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise

    def _open_real(self, real: Sequence[str]) -> int:
        """Open a directory by its real path under the root (no symlinks on the way, none followed)."""
        fd = os.dup(self._root)
        for part in real:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            finally:
                os.close(fd)
            fd = child
        return fd

    def _open_child(self, fd: int, part: str, *, create: bool) -> int | None:
        """Open the directory ``part`` in ``fd``, or return None if it is a symlink to resolve."""
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                return None
            raise UnsafeLayer(f"{part!r} is on the path but is not a directory") from None
        os.mkdir(part, 0o755, dir_fd=fd)
        child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        os.fchmod(child, 0o755)  # mkdir's mode went through the umask
        return child


class _DirNode:
    __slots__ = ("children", "times")

    def __init__(self) -> None:
        self.times: tuple[int, int] | None = None
        self.children: dict[str, _DirNode] = {}


class _DirTimes:
    """The times of directory entries by real path, held back until everything is unpacked.

    Writing a directory's contents changes its times. A tree, so that removing a directory forgets all of it at once.
    """

    def __init__(self) -> None:
        self._root = _DirNode()

    def set(self, real: Sequence[str], times: tuple[int, int]) -> None:
        node = self._root
        for part in real:
            child = node.children.get(part)
            if child is None:
                child = node.children[part] = _DirNode()
            node = child
        node.times = times

    def forget(self, real: Sequence[str]) -> None:
        node: _DirNode | None = self._root
        for part in real[:-1]:
            node = node.children.get(part) if node else None
        if node is not None:
            node.children.pop(real[-1], None)

    def items(self) -> Iterator[tuple[tuple[str, ...], tuple[int, int]]]:
        pending: list[tuple[tuple[str, ...], _DirNode]] = [((), self._root)]
        while pending:
            real, node = pending.pop()
            if node.times is not None:
                yield real, node.times
            pending.extend(((*real, name), child) for name, child in node.children.items())


# --- helpers -----------------------------------------------------------------------------------------------------


def _open_tar(stream: _Meter) -> tarfile.TarFile:
    """Read ``stream`` as a tar, strictly and in order (it is never seeked); names may hold any bytes."""
    return tarfile.open(fileobj=stream, mode="r|", tarinfo=_StrictTarInfo, encoding="utf-8", errors="surrogateescape")


def _check_supported(member: tarfile.TarInfo) -> None:
    if member.sparse is not None or member.type == tarfile.GNUTYPE_SPARSE:
        raise UnsafeLayer("sparse files are not supported")
    if member.type not in _SUPPORTED_TYPES:
        raise UnsafeLayer(f"unsupported entry type {member.type!r}")
    if "\0" in member.name or "\0" in member.linkname:
        raise UnsafeLayer("a NUL byte in a name")


def _clean(name: str) -> list[str]:
    """The components of ``name`` taken from the root, cleaned lexically with ``..`` clamped at the root."""
    parts: list[str] = []
    for part in name.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return parts


def _copy(source: _Readable, fd: int) -> None:
    while chunk := source.read(CHUNK_SIZE):
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def _chmod_no_follow(slot: _Slot, mode: int) -> None:
    """chmod the entry itself: Linux has no lchmod, so go through an O_PATH fd that pins the inode."""
    fd = os.open(slot.name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=slot.parent_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise UnsafeLayer("changed into a symlink while being unpacked")
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)


def _mode(member: tarfile.TarInfo) -> int:
    return member.mode & 0o7777


def _times(member: tarfile.TarInfo) -> tuple[int, int]:
    """(atime, mtime) in nanoseconds: PAX times keep their fraction, a missing atime is the mtime."""
    mtime = _pax_time(member, "mtime")
    if mtime is None:
        mtime = int(member.mtime) * 1_000_000_000
    atime = _pax_time(member, "atime")
    return (mtime if atime is None else atime), mtime


def _pax_time(member: tarfile.TarInfo, key: str) -> int | None:
    text = member.pax_headers.get(key)
    if text is None:
        return None
    try:
        return int(Decimal(text).scaleb(9).to_integral_value(rounding=ROUND_FLOOR))
    except (ArithmeticError, ValueError) as exc:
        raise UnsafeLayer(f"invalid PAX {key} {text!r}") from exc
