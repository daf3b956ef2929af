"""Build the catalog into an OCI image layout, byte for byte the same on every run.

Reproducibility rules: tar members sorted (hard links last), mtime/uid/gid/names fixed, USTAR format
(no pax timestamps); gzip with mtime 0 and no file name; canonical JSON (sorted keys, no spaces);
a fixed ``created``; C helpers compiled with ``gcc -static -Os -s`` and no build id. The inputs (busybox
and its libraries, the C sources, the toolchain, the catalog) are fingerprinted, so a second build with
the same inputs returns at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from critest.images import BuildError
from critest.images.catalog import (
    DEFAULT_CACHE_DIR,
    HOST_ARCH,
    IMAGES,
    Entry,
    ImageSpec,
    LayerSpec,
    Reference,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = "1"  # bump whenever the bytes this module writes change for the same inputs
SOURCE_DATE_EPOCH = 0
CREATED = "1970-01-01T00:00:00Z"

MEDIA_TYPE_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TYPE_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
TITLE_LABEL = "org.opencontainers.image.title"

IMAGES_JSON = "images.json"
STAMP_FILE = "critest-images.stamp"
SRC_DIR = Path(__file__).parent / "src"
BUSYBOX_ENV = "CRITEST_IMAGES_BUSYBOX"
HOST_BUSYBOX = Path("/bin/busybox")
CFLAGS = ("-static", "-Os", "-s", "-std=gnu11", "-Wall", "-Wextra", "-Wl,--build-id=none")


def default_inputs_dir() -> Path:
    """Where fetched build inputs (Debian's busybox package) are kept between builds."""
    return DEFAULT_CACHE_DIR / "inputs"

# --------------------------------------------------------------------------- blobs and JSON

def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Descriptor:
        return cls(value["mediaType"], value["digest"], value["size"])


class OciLayout:
    """An OCI image layout directory: ``oci-layout``, ``index.json`` and ``blobs/sha256/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def blob_path(self, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        return self.root / "blobs" / algorithm / encoded

    def put(self, data: bytes, media_type: str) -> Descriptor:
        descriptor = Descriptor(media_type, sha256_digest(data), len(data))
        path = self.blob_path(descriptor.digest)
        if not path.exists():
            write_atomically(path, data)
        return descriptor

    def read(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def read_json(self, digest: str) -> dict[str, Any]:
        return json.loads(self.read(digest))

    def children(self, descriptor: Descriptor) -> list[Descriptor]:
        """The descriptors an index or a manifest points at (none for configs and layers)."""
        if descriptor.media_type == MEDIA_TYPE_INDEX:
            return [Descriptor.from_json(d) for d in self.read_json(descriptor.digest)["manifests"]]
        if descriptor.media_type == MEDIA_TYPE_MANIFEST:
            manifest = self.read_json(descriptor.digest)
            return [Descriptor.from_json(manifest["config"])] + [
                Descriptor.from_json(d) for d in manifest["layers"]
            ]
        return []

    def walk(self, descriptor: Descriptor) -> Iterator[Descriptor]:
        """``descriptor`` and everything below it, children before parents."""
        for child in self.children(descriptor):
            yield from self.walk(child)
        yield descriptor

    def references(self) -> dict[str, Descriptor]:
        """{reference: top-level descriptor} from ``index.json``."""
        index = json.loads((self.root / "index.json").read_text())
        return {
            entry["annotations"][REF_NAME_ANNOTATION]: Descriptor.from_json(entry)
            for entry in index["manifests"]
        }

    def write_index(self, tops: dict[str, Descriptor]) -> None:
        manifests = [
            {**tops[ref].to_json(), "annotations": {REF_NAME_ANNOTATION: ref}} for ref in sorted(tops)
        ]
        index = {"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": manifests}
        write_atomically(self.root / "oci-layout", canonical_json({"imageLayoutVersion": "1.0.0"}))
        write_atomically(self.root / "index.json", canonical_json(index))

    def remove_unreferenced_blobs(self, tops: Iterable[Descriptor]) -> None:
        """Delete blobs left by builds from other inputs."""
        keep = {self.blob_path(d.digest) for top in tops for d in self.walk(top)}
        blob_dir = self.root / "blobs" / "sha256"
        for path in blob_dir.iterdir() if blob_dir.is_dir() else ():
            if path not in keep:
                path.unlink()


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)

# --------------------------------------------------------------------------- host inputs

def _run(argv: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(argv, capture_output=True, check=False, timeout=120, **kwargs)
    except FileNotFoundError as exc:
        raise BuildError(f"{what}: {argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{what}: {argv[0]} did not finish in {exc.timeout:.0f}s") from exc


def has_standalone_shell(busybox: Path) -> bool:
    """Whether busybox's shell runs its own applets instead of searching PATH.

    Debian's busybox-static is built that way: ``sh -c ls`` never execs /bin/ls, so masking
    /bin/ls (the MaskedPaths spec) cannot make it fail with ``/bin/sh: ls: Permission denied``.
    """
    with tempfile.TemporaryDirectory(prefix="critest-images-probe-") as tmp:
        probe = Path(tmp) / "ls"
        probe.write_text("#!/bin/sh\necho found-in-path\n")
        probe.chmod(0o755)
        result = _run([str(busybox), "sh", "-c", "ls"], "probing busybox", cwd=tmp, env={"PATH": tmp})
    return b"found-in-path" not in result.stdout


def fetch_debian_busybox(inputs_dir: Path) -> Path | None:
    """Extract the binary of Debian's dynamically linked ``busybox`` package, fetched with apt."""
    target = inputs_dir / "debian-busybox"
    binary = target / "bin" / "busybox"
    if binary.exists():
        return binary
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="critest-images-apt-") as tmp:
        download = _run(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", "busybox"],
                        "fetching Debian's busybox package", cwd=tmp)
        debs = sorted(Path(tmp).glob("busybox_*.deb"))
        if download.returncode != 0 or not debs:
            log.debug("apt-get download busybox failed: %s", download.stderr.decode(errors="replace"))
            return None
        unpacked = Path(tmp) / "unpacked"
        if _run(["dpkg-deb", "-x", str(debs[0]), str(unpacked)], "unpacking busybox").returncode != 0:
            return None
        inputs_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(unpacked), str(target))
    log.info("using busybox from Debian's busybox package (%s)", binary)
    return binary


def resolve_busybox(explicit: Path | None = None, inputs_dir: Path | None = None) -> Path:
    """The busybox binary to put in the images.

    In order: ``explicit``, ``$CRITEST_IMAGES_BUSYBOX``, the host's busybox when its shell searches
    PATH, Debian's ``busybox`` package (fetched once into ``inputs_dir``), and last the host's
    standalone-shell busybox, with a warning.
    """
    chosen = explicit or (Path(os.environ[BUSYBOX_ENV]) if os.environ.get(BUSYBOX_ENV) else None)
    if chosen is not None:
        if not os.access(chosen, os.X_OK):
            raise BuildError(f"busybox {chosen} does not exist or is not executable")
        return chosen
    host = Path(shutil.which("busybox") or HOST_BUSYBOX)
    host_usable = os.access(host, os.X_OK)
    if host_usable and not has_standalone_shell(host):
        return host
    fetched = fetch_debian_busybox(inputs_dir or default_inputs_dir())
    if fetched is not None:
        return fetched
    if host_usable:
        log.warning("%s runs applets without a PATH search, so the MaskedPaths spec will fail; "
                    "pass --busybox with Debian's busybox package binary to fix it", host)
        return host
    raise BuildError("no busybox found: install busybox-static, or pass --busybox PATH")


@dataclass(frozen=True)
class Busybox:
    """The busybox binary, its applets and the shared libraries it loads."""

    binary: bytes
    applets: tuple[str, ...]
    libraries: tuple[tuple[str, bytes], ...]  # (path in the image, content)


def shared_libraries(binary: Path) -> tuple[tuple[str, bytes], ...]:
    """The loader and libraries of a dynamic executable, as ldd resolves them; () if static."""
    result = _run(["ldd", str(binary)], "listing busybox's libraries")
    if result.returncode != 0:
        return ()  # ldd exits non-zero for "not a dynamic executable"
    libraries: dict[str, bytes] = {}
    for line in result.stdout.decode().splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 2 else (words[0] if words else "")
        if path.startswith("/"):
            libraries[path.lstrip("/")] = Path(path).resolve().read_bytes()
    return tuple(sorted(libraries.items()))


def load_busybox(path: Path) -> Busybox:
    listing = _run([str(path), "--list"], "listing busybox applets")
    if listing.returncode != 0:
        raise BuildError(f"{path} --list failed: {listing.stderr.decode(errors='replace').strip()}")
    applets = tuple(sorted(set(listing.stdout.decode().split()) - {"busybox"}))
    return Busybox(path.read_bytes(), applets, shared_libraries(path))

# --------------------------------------------------------------------------- C helpers

def program_names(images: Iterable[ImageSpec] = IMAGES) -> tuple[str, ...]:
    return tuple(sorted({
        entry.target for spec in images for layer in spec.layers for entry in layer.entries
        if entry.kind == "program"
    }))


def compiler() -> str:
    return os.environ.get("CC", "gcc")


def toolchain_identity() -> str:
    """What decides the bytes gcc produces: its version, target and static libc."""
    version = _run([compiler(), "--version"], "checking the C compiler")
    if version.returncode != 0:
        raise BuildError(f"{compiler()} --version failed")
    target = _run([compiler(), "-dumpmachine"], "checking the C compiler").stdout.decode().strip()
    libc = _run([compiler(), "-print-file-name=libc.a"], "checking the C compiler").stdout.decode().strip()
    libc_path = Path(libc)
    if not libc_path.is_absolute() or not libc_path.exists():
        raise BuildError("static libc (libc.a) not found: install libc6-dev")
    libc_digest = hashlib.sha256(libc_path.read_bytes()).hexdigest()
    return f"{version.stdout.decode().splitlines()[0]} {target} libc.a:{libc_digest}"


def _compile(name: str, workdir: Path) -> bytes:
    output = workdir / name
    argv = [compiler(), *CFLAGS, f"-ffile-prefix-map={SRC_DIR}=src", "-o", str(output), str(SRC_DIR / f"{name}.c")]
    result = _run(argv, f"compiling {name}.c", env={**os.environ, "LC_ALL": "C", "SOURCE_DATE_EPOCH": "0"})
    if result.returncode != 0:
        first_error = result.stderr.decode(errors="replace").strip().splitlines()[:1]
        raise BuildError(f"compiling {name}.c failed: {' '.join(first_error)}")
    return output.read_bytes()


def compile_programs(names: Iterable[str]) -> dict[str, bytes]:
    """{name: static executable} for each ``src/<name>.c``."""
    names = sorted(names)
    with tempfile.TemporaryDirectory(prefix="critest-images-cc-") as tmp, ThreadPoolExecutor() as pool:
        binaries = pool.map(lambda name: _compile(name, Path(tmp)), names)
        return dict(zip(names, binaries, strict=True))

# --------------------------------------------------------------------------- layers

def _member(path: str, kind: bytes, mode: int, uid: int = 0, gid: int = 0, size: int = 0,
            linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(path + "/" if kind == tarfile.DIRTYPE else path)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = SOURCE_DATE_EPOCH
    info.size = size
    info.linkname = linkname
    return info


def _entry_member(entry: Entry, programs: dict[str, bytes]) -> tuple[tarfile.TarInfo, bytes]:
    if entry.kind == "dir":
        return _member(entry.path, tarfile.DIRTYPE, entry.mode, entry.uid, entry.gid), b""
    data = programs[entry.target] if entry.kind == "program" else entry.data
    return _member(entry.path, tarfile.REGTYPE, entry.mode, entry.uid, entry.gid, size=len(data)), data


def _parent_dirs(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _busybox_members(busybox: Busybox, declared: set[str]) -> list[tuple[tarfile.TarInfo, bytes]]:
    """busybox in /bin, a hard link per applet (those a helper replaces excepted), its libraries."""
    members = [(_member("bin/busybox", tarfile.REGTYPE, 0o755, size=len(busybox.binary)), busybox.binary)]
    members += [
        (_member(f"bin/{applet}", tarfile.LNKTYPE, 0o755, linkname="bin/busybox"), b"")
        for applet in busybox.applets if f"bin/{applet}" not in declared
    ]
    library_dirs = {d for path, _ in busybox.libraries for d in _parent_dirs(path)} - declared
    members += [(_member(d, tarfile.DIRTYPE, 0o755), b"") for d in library_dirs]
    members += [(_member(path, tarfile.REGTYPE, 0o755, size=len(data)), data) for path, data in busybox.libraries]
    return members


def layer_tar(layer: LayerSpec, busybox: Busybox, programs: dict[str, bytes]) -> bytes:
    """The uncompressed layer: members sorted by path, hard links after their targets."""
    members = [_entry_member(entry, programs) for entry in layer.entries]
    if layer.with_busybox:
        members += _busybox_members(busybox, {entry.path for entry in layer.entries})
    members.sort(key=lambda m: (m[0].type == tarfile.LNKTYPE, m[0].name.rstrip("/")))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


@dataclass(frozen=True)
class BuiltLayer:
    descriptor: Descriptor  # of the gzip blob
    diff_id: str  # digest of the uncompressed tar


def build_layer(layer: LayerSpec, busybox: Busybox, programs: dict[str, bytes], layout: OciLayout) -> BuiltLayer:
    tar = layer_tar(layer, busybox, programs)
    compressed = gzip.compress(tar, compresslevel=6, mtime=0)
    return BuiltLayer(layout.put(compressed, MEDIA_TYPE_LAYER), sha256_digest(tar))

# --------------------------------------------------------------------------- images

def image_config(spec: ImageSpec, diff_ids: list[str]) -> dict[str, Any]:
    """The OCI image configuration; the spec's name goes in a label so no two specs share an ID."""
    cfg = spec.config
    runtime = {
        "Entrypoint": list(cfg.entrypoint),
        "Cmd": list(cfg.cmd),
        "Env": list(cfg.env),
        "User": cfg.user,
        "WorkingDir": cfg.working_dir,
        "ExposedPorts": {port: {} for port in cfg.exposed_ports},
        "Volumes": {path: {} for path in cfg.volumes},
        "StopSignal": cfg.stop_signal,
        "Labels": {**dict(cfg.labels), TITLE_LABEL: spec.name},
    }
    return {
        "architecture": HOST_ARCH,
        "os": "linux",
        "created": CREATED,
        "config": {key: value for key, value in runtime.items() if value},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"critest-images: {layer.name} layer"}
                    for layer in spec.layers],
    }


def build_image(spec: ImageSpec, layers: dict[LayerSpec, BuiltLayer], layout: OciLayout) -> Descriptor:
    """Write the image's config and manifest (and index if multi-arch); return what a client pulls."""
    built = [layers[layer] for layer in spec.layers]
    config = layout.put(canonical_json(image_config(spec, [b.diff_id for b in built])), MEDIA_TYPE_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": config.to_json(),
        "layers": [b.descriptor.to_json() for b in built],
    }
    manifest_descriptor = layout.put(canonical_json(manifest), MEDIA_TYPE_MANIFEST)
    if not spec.multi_arch:
        return manifest_descriptor
    platform = {"architecture": HOST_ARCH, "os": "linux"}
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": [{**manifest_descriptor.to_json(), "platform": platform}],
    }
    return layout.put(canonical_json(index), MEDIA_TYPE_INDEX)


def published_references(spec: ImageSpec, digest: str) -> list[str]:
    """The canonical references of a built image; digest-only ones completed with its digest."""
    parsed = [Reference.parse(ref) for ref in spec.references]
    return [str(ref.with_digest(digest) if spec.digest_only else ref) for ref in parsed]

# --------------------------------------------------------------------------- the whole catalog

def build_fingerprint(busybox: Busybox, programs: Iterable[str], toolchain: str) -> str:
    inputs = {
        "format": FORMAT_VERSION,
        "catalog": repr(IMAGES),
        "arch": HOST_ARCH,
        "busybox": hashlib.sha256(busybox.binary).hexdigest(),
        "libraries": [[path, hashlib.sha256(data).hexdigest()] for path, data in busybox.libraries],
        "sources": {name: hashlib.sha256((SRC_DIR / f"{name}.c").read_bytes()).hexdigest() for name in programs},
        "cflags": list(CFLAGS),
        "toolchain": toolchain,
    }
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def load_images(out_dir: Path) -> dict[str, str]:
    """The {reference: digest} map of what was built in ``out_dir``; empty if nothing was."""
    try:
        return json.loads((out_dir / IMAGES_JSON).read_text())
    except (OSError, ValueError):
        return {}


def _is_complete(out_dir: Path, fingerprint: str) -> bool:
    stamp = out_dir / STAMP_FILE
    if not stamp.exists() or stamp.read_text().strip() != fingerprint or not load_images(out_dir):
        return False
    layout = OciLayout(out_dir)
    try:
        return all(layout.blob_path(d.digest).exists()
                   for top in layout.references().values() for d in layout.walk(top))
    except (OSError, ValueError, KeyError):
        return False


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Serialise builds into the same directory (several test sessions may share the cache)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_all(out_dir: Path, *, busybox: Path | None = None, inputs_dir: Path | None = None) -> dict[str, str]:
    """Build every catalog image into the OCI layout ``out_dir``; return {reference: pulled digest}.

    The map is also written to ``out_dir/images.json``. Nothing is rebuilt when the inputs match
    the previous build's. ``busybox`` picks the busybox binary (see ``resolve_busybox``).
    """
    out_dir = Path(out_dir)
    box = load_busybox(resolve_busybox(busybox, inputs_dir))
    names = program_names()
    fingerprint = build_fingerprint(box, names, toolchain_identity())
    with _locked(out_dir):
        if _is_complete(out_dir, fingerprint):
            log.debug("%s is up to date", out_dir)
            return load_images(out_dir)
        log.debug("building %d images into %s", len(IMAGES), out_dir)
        return _build_into(out_dir, box, compile_programs(names), fingerprint)


def _build_into(out_dir: Path, busybox: Busybox, programs: dict[str, bytes], fingerprint: str) -> dict[str, str]:
    layout = OciLayout(out_dir)
    all_layers = {layer for spec in IMAGES for layer in spec.layers}
    layers = {layer: build_layer(layer, busybox, programs, layout) for layer in all_layers}
    tops: dict[str, Descriptor] = {}
    for spec in IMAGES:
        top = build_image(spec, layers, layout)
        tops.update((ref, top) for ref in published_references(spec, top.digest))
    layout.write_index(tops)
    layout.remove_unreferenced_blobs(tops.values())
    images = {ref: tops[ref].digest for ref in sorted(tops)}
    write_atomically(out_dir / IMAGES_JSON, json.dumps(images, indent=2).encode() + b"\n")
    write_atomically(out_dir / STAMP_FILE, fingerprint.encode() + b"\n")
    return images
