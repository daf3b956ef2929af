"""Tests of the offline test-image kit (critest.images): catalog, reproducible build, push, CLI, runc."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from critest.images import BuildError, PushError, build, catalog
from critest.images.build import (
    MEDIA_TYPE_INDEX,
    MEDIA_TYPE_MANIFEST,
    Descriptor,
    OciLayout,
    build_all,
    has_standalone_shell,
    resolve_busybox,
)
from critest.images.catalog import Reference, canonical, mirror_location
from critest.images.cli import cli
from critest.images.push import push_all
from critest.testbed.process import free_tcp_port

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
needs_registry = pytest.mark.skipif(shutil.which("docker-registry") is None, reason="docker-registry not installed")
needs_runc = pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")

# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def kit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cold build shared by the tests that only read its output."""
    out_dir = tmp_path_factory.mktemp("kit")
    build_all(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def images(kit_dir: Path) -> dict[str, str]:
    return json.loads((kit_dir / "images.json").read_text())


def image_manifest(layout: OciLayout, reference: str) -> dict[str, Any]:
    """The image manifest a linux client on this host resolves ``reference`` to."""
    top = layout.references()[reference]
    if top.media_type == MEDIA_TYPE_INDEX:
        (child,) = layout.children(top)
        return layout.read_json(child.digest)
    return layout.read_json(top.digest)


def image_config(layout: OciLayout, reference: str) -> dict[str, Any]:
    return layout.read_json(image_manifest(layout, reference)["config"]["digest"])


def layer_tars(layout: OciLayout, reference: str) -> list[tarfile.TarFile]:
    return [
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout.read(layer["digest"]))))
        for layer in image_manifest(layout, reference)["layers"]
    ]


def image_files(layout: OciLayout, reference: str) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """The image's file system after applying its layers in order: {path: (member, content)}."""
    files: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for tar in layer_tars(layout, reference):
        for member in tar.getmembers():
            data = tar.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            files[member.name] = (member, data)
    return files

# --------------------------------------------------------------------------- references and catalog


@pytest.mark.parametrize(("reference", "expected"), [
    ("busybox", ("docker.io", "library/busybox", "latest", "")),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", "")),
    ("docker.io/library/busybox:1", ("docker.io", "library/busybox", "1", "")),
    ("registry.k8s.io/pause:3.10", ("registry.k8s.io", "pause", "3.10", "")),
    ("localhost:5000/a/b", ("localhost:5000", "a/b", "latest", "")),
    ("gcr.io/x/y@sha256:" + "0" * 64, ("gcr.io", "x/y", "", "sha256:" + "0" * 64)),
], ids=["short", "short-tag", "hub", "k8s", "port", "digest"])
def test_reference_parse(reference: str, expected: tuple[str, str, str, str]) -> None:
    parsed = Reference.parse(reference)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == expected


@pytest.mark.parametrize(("reference", "location"), [
    (catalog.BUSYBOX, ("e2e-test-images/busybox", "1.29-2")),
    ("busybox:latest", ("library/busybox", "latest")),
    (catalog.PAUSE_3_9_LEGACY, ("pause", "3.9")),
    ("public.ecr.aws/docker/library/busybox:1-musl", ("docker/library/busybox", "1-musl")),
    ("gcr.io/k8s-staging-cri-tools/test-image-digest@sha256:" + "a" * 64,
     ("k8s-staging-cri-tools/test-image-digest", "sha256:" + "a" * 64)),
])
def test_mirror_location_keeps_the_path(reference: str, location: tuple[str, str]) -> None:
    assert mirror_location(reference) == location


def test_catalog_names_and_references_are_unique() -> None:
    names = [spec.name for spec in catalog.IMAGES]
    references = [canonical(ref) for spec in catalog.IMAGES for ref in spec.references]
    assert len(names) == len(set(names))
    assert len(references) == len(set(references))
    assert all(Reference.parse(ref).domain in catalog.MIRRORED_REGISTRIES for ref in references)


def test_catalog_layers_declare_their_parent_directories() -> None:
    """Entries never rely on a directory that neither their layer nor a lower one declares."""
    for spec in catalog.IMAGES:
        declared: set[str] = set()
        for layer in spec.layers:
            declared |= {entry.path for entry in layer.entries}
            for entry in layer.entries:
                parent = entry.path.rpartition("/")[0]
                assert not parent or parent in declared, f"{spec.name}: {entry.path}"

# --------------------------------------------------------------------------- build


def test_build_returns_every_reference(kit_dir: Path, images: dict[str, str]) -> None:
    required = [
        catalog.BUSYBOX, catalog.NGINX, catalog.HTTPD, catalog.NONEWPRIVS, catalog.HOSTNET_NGINX,
        catalog.PAUSE, catalog.PAUSE_3_9, catalog.PAUSE_3_9_LEGACY, catalog.PAUSE_3_6,
        catalog.TEST_IMAGE_TAG, catalog.TEST_IMAGE_ALL_REFERENCES, catalog.TEST_IMAGE_LATEST,
        *catalog.TEST_IMAGES_DIFFERENT, *catalog.TEST_IMAGES_SAME, catalog.TEST_IMAGE_USER_UID,
        catalog.TEST_IMAGE_USER_USERNAME, catalog.TEST_IMAGE_USER_UID_GROUP,
        catalog.TEST_IMAGE_USER_USERNAME_GROUP, catalog.TEST_IMAGE_PREDEFINED_GROUP,
        *catalog.BENCHMARK_BUSYBOX_ECR, "docker.io/library/busybox:1.36", canonical("busybox"),
    ]
    assert set(required) <= set(images)
    (digest_ref,) = [ref for ref in images if ref.startswith(catalog.TEST_IMAGE_DIGEST_REPOSITORY + "@")]
    assert digest_ref.endswith("@" + images[digest_ref])
    assert OciLayout(kit_dir).references().keys() == images.keys()


def test_only_aliases_share_an_image(images: dict[str, str]) -> None:
    assert images[catalog.PAUSE_3_9] == images[catalog.PAUSE_3_9_LEGACY]
    assert len({images[ref] for ref in catalog.TEST_IMAGES_SAME}) == 1
    assert len(set(images.values())) == len(catalog.IMAGES)


def test_build_is_reproducible(tmp_path: Path, images: dict[str, str], kit_dir: Path) -> None:
    again = build_all(tmp_path / "again")
    assert again == images
    blobs = sorted(p.name for p in (kit_dir / "blobs" / "sha256").iterdir())
    assert sorted(p.name for p in (tmp_path / "again" / "blobs" / "sha256").iterdir()) == blobs
    for name in blobs:  # content-addressed: every blob's name is its content's hash
        assert hashlib.sha256((kit_dir / "blobs" / "sha256" / name).read_bytes()).hexdigest() == name


def test_warm_build_reuses_the_output(kit_dir: Path, images: dict[str, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiling(names: object) -> dict[str, bytes]:
        raise AssertionError("a warm build must not compile")

    monkeypatch.setattr(build, "compile_programs", no_compiling)
    assert build_all(kit_dir) == images


def test_resolve_busybox_honours_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = tmp_path / "busybox"
    chosen.write_text("#!/bin/sh\n")
    chosen.chmod(0o755)
    monkeypatch.setenv(build.BUSYBOX_ENV, str(chosen))
    assert resolve_busybox() == chosen
    with pytest.raises(BuildError, match="does not exist"):
        resolve_busybox(tmp_path / "missing")


def test_multi_arch_images_are_indexes(kit_dir: Path, images: dict[str, str]) -> None:
    layout = OciLayout(kit_dir)
    for reference, top in layout.references().items():
        domain = Reference.parse(reference).domain
        if domain in ("registry.k8s.io", "k8s.gcr.io", "gcr.io"):
            assert top.media_type == MEDIA_TYPE_INDEX, reference
            (child,) = layout.read_json(top.digest)["manifests"]
            assert child["platform"] == {"architecture": catalog.HOST_ARCH, "os": "linux"}
        else:
            assert top.media_type == MEDIA_TYPE_MANIFEST, reference


def test_layers_are_normalised(kit_dir: Path) -> None:
    layout = OciLayout(kit_dir)
    for layer in image_manifest(layout, catalog.NONEWPRIVS)["layers"]:
        blob = layout.read(layer["digest"])
        assert blob[:4] == b"\x1f\x8b\x08\x00"  # gzip, no FNAME flag
        assert blob[4:8] == b"\0\0\0\0"  # mtime 0
        raw = gzip.decompress(blob)
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = tar.getmembers()
        assert all(m.mtime == 0 and m.uname == "" and m.gname == "" for m in members)
        assert not any(m.pax_headers for m in members)
        assert raw[257:263] == b"ustar\0"
        names = [m.name for m in members if not m.islnk()]
        assert names == sorted(names)


def test_busybox_has_hard_linked_applets_and_helpers(kit_dir: Path) -> None:
    files = image_files(OciLayout(kit_dir), catalog.BUSYBOX)
    assert files["bin/busybox"][0].isreg()
    for applet in ("sh", "ls", "top", "sleep", "id", "touch", "ping", "brctl", "netstat", "pidof",
                   "mount", "grep", "dd", "seq", "sync", "hostname", "cat", "echo", "httpd"):
        member = files[f"bin/{applet}"][0]
        assert member.islnk() and member.linkname == "bin/busybox", applet
    for helper in ("pgrep", "ipcs"):
        member, data = files[f"bin/{helper}"]
        assert member.isreg() and member.mode == 0o755 and data.startswith(b"\x7fELF")
    assert files["tmp"][0].mode == 0o1777


def test_busybox_users_and_groups(kit_dir: Path) -> None:
    files = image_files(OciLayout(kit_dir), catalog.BUSYBOX)
    passwd = files["etc/passwd"][1].decode().splitlines()
    assert "root:x:0:0:root:/root:/bin/sh" in passwd
    assert any(line.startswith("nobody:x:65534:65534:") for line in passwd)
    assert any(line.startswith("www-data:x:33:33:") for line in passwd)
    group = files["etc/group"][1].decode().splitlines()
    assert "root:x:0:" in group and "nogroup:x:65534:" in group


@pytest.mark.parametrize(("reference", "user"), [
    (catalog.TEST_IMAGE_USER_UID, "1002"),
    (catalog.TEST_IMAGE_USER_USERNAME, "www-data"),
    (catalog.TEST_IMAGE_USER_UID_GROUP, "1003:1004"),
    (catalog.TEST_IMAGE_USER_USERNAME_GROUP, "www-data:1004"),
    (catalog.TEST_IMAGE_PREDEFINED_GROUP, "1000"),
    (catalog.PAUSE, "65535:65535"),
])
def test_image_users(kit_dir: Path, reference: str, user: str) -> None:
    assert image_config(OciLayout(kit_dir), reference)["config"]["User"] == user


def test_predefined_group_image(kit_dir: Path) -> None:
    files = image_files(OciLayout(kit_dir), catalog.TEST_IMAGE_PREDEFINED_GROUP)
    passwd = files["etc/passwd"][1].decode().splitlines()
    group = files["etc/group"][1].decode().splitlines()
    assert any(line.startswith("default-user:x:1000:1000:") for line in passwd)
    assert "default-user:x:1000:" in group
    assert "group-defined-in-image:x:50000:default-user" in group
    assert files["home/default-user"][0].uid == 1000


@pytest.mark.parametrize(("reference", "marker"), [
    (catalog.TEST_IMAGE_TAG, "test"),
    (catalog.TEST_IMAGE_ALL_REFERENCES, "all"),
    (catalog.TEST_IMAGE_LATEST, "test-image-latest"),
    (catalog.TEST_IMAGES_DIFFERENT[1], "test-image-2"),
    (catalog.TEST_IMAGES_SAME[0], "same-image"),
])
def test_marker_images(kit_dir: Path, reference: str, marker: str) -> None:
    files = image_files(OciLayout(kit_dir), reference)
    assert marker in files
    # the image-volume specs exec these from a mount of the image
    assert {"bin/sh", "bin/ls", "etc/passwd"} <= files.keys()


def test_server_images(kit_dir: Path) -> None:
    layout = OciLayout(kit_dir)
    nnp = image_files(layout, catalog.NONEWPRIVS)["usr/local/bin/nnp"][0]
    assert (nnp.mode, nnp.uid) == (0o4755, 0)
    assert image_config(layout, catalog.NONEWPRIVS)["config"]["Entrypoint"] == ["/usr/local/bin/nnp"]
    hostnet = image_files(layout, catalog.HOSTNET_NGINX)["etc/nginx/conf.d/default.conf"][1]
    assert b"listen 12003;" in hostnet
    assert image_config(layout, catalog.NGINX)["config"]["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert "usr/local/apache2/bin/httpd-foreground" in image_files(layout, catalog.HTTPD)
    assert set(image_files(layout, catalog.PAUSE)) == {"pause"}

# --------------------------------------------------------------------------- push


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    from critest.testbed.registry import LocalRegistry

    with LocalRegistry(tmp_path / "registry") as local:
        yield local.address


def served_manifest(registry: str, reference: str, media_type: str) -> requests.Response:
    repository, version = mirror_location(reference)
    response = requests.get(f"http://{registry}/v2/{repository}/manifests/{version}",
                            headers={"Accept": media_type}, timeout=10)
    response.raise_for_status()
    return response


@pytest.mark.root
@needs_registry
def test_push_serves_the_built_digests(kit_dir: Path, images: dict[str, str], registry: str) -> None:
    assert push_all(kit_dir, registry) == images
    layout = OciLayout(kit_dir)
    for reference, top in layout.references().items():
        response = served_manifest(registry, reference, top.media_type)
        assert response.headers["Docker-Content-Digest"] == images[reference]
        assert "sha256:" + hashlib.sha256(response.content).hexdigest() == images[reference]
    # a client resolving the index can fetch the manifest, config and layers from the same repository
    repository, _ = mirror_location(catalog.BUSYBOX)
    for descriptor in layout.walk(layout.references()[catalog.BUSYBOX]):
        kind = "manifests" if descriptor.media_type in (MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST) else "blobs"
        head = requests.head(f"http://{registry}/v2/{repository}/{kind}/{descriptor.digest}",
                             headers={"Accept": descriptor.media_type}, timeout=10)
        assert head.status_code == 200, descriptor


@pytest.mark.root
@needs_registry
def test_second_push_uploads_nothing(kit_dir: Path, registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    push_all(kit_dir, registry)
    methods: list[str] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
        methods.append(method)
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    push_all(kit_dir, registry)
    assert set(methods) <= {"GET", "HEAD"}


@pytest.mark.root
@needs_registry
def test_digest_only_image_is_pushed_by_digest(kit_dir: Path, images: dict[str, str], registry: str) -> None:
    push_all(kit_dir, registry)
    (reference,) = [ref for ref in images if "@" in ref]
    response = served_manifest(registry, reference, MEDIA_TYPE_INDEX)
    assert response.headers["Docker-Content-Digest"] == images[reference]
    repository, _ = mirror_location(reference)
    tags = requests.get(f"http://{registry}/v2/{repository}/tags/list", timeout=10)
    assert tags.status_code == 404 or not tags.json().get("tags")

# --------------------------------------------------------------------------- CLI


def test_cli_rejects_a_malformed_registry_address(kit_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["push", "--registry", "not-an-address", "--out", str(kit_dir)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: invalid registry address 'not-an-address': expected HOST:PORT, e.g. 127.0.0.1:5000"
    ]


@pytest.mark.parametrize("registry", ["127.0.0.1:{port}", "no-such-host.invalid:5000"], ids=["down", "unknown"])
def test_cli_reports_an_unreachable_registry_in_one_line(kit_dir: Path, registry: str) -> None:
    argv = ["push", "--registry", registry.format(port=free_tcp_port()), "--out", str(kit_dir)]
    result = subprocess.run(
        [sys.executable, "-c", "from critest.images.cli import main; main()", *argv],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert line.startswith("Error: cannot connect to registry")


def test_push_needs_a_build(tmp_path: Path) -> None:
    with pytest.raises(PushError, match="run 'critest-images build'"):
        push_all(tmp_path, "127.0.0.1:5000")


def test_cli_build_is_quiet_when_up_to_date(kit_dir: Path, images: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["build", "--out", str(kit_dir)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{len(images)} references built in {kit_dir}\n"


def test_cli_list_prints_references_and_digests(kit_dir: Path, images: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["list", "--out", str(kit_dir)])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:]]
    assert dict(rows) == images

# --------------------------------------------------------------------------- runc


class Bundle:
    """An image unpacked into a runc bundle, run with a private runc state directory."""

    def __init__(self, layout: OciLayout, reference: str, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        rootfs = root / "rootfs"
        rootfs.mkdir(parents=True)
        for tar in layer_tars(layout, reference):
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(rootfs, filter="tar")
            else:
                tar.extractall(rootfs)
        subprocess.run(["runc", "spec", "--bundle", str(root)], check=True)
        self.config = json.loads((root / "config.json").read_text())
        image = image_config(layout, reference)["config"]
        process = self.config["process"]
        process["terminal"] = False
        process["args"] = image.get("Entrypoint", []) + image.get("Cmd", [])
        process["env"] = image.get("Env", [])
        self.config["root"]["readonly"] = False
        self.ids: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def _write_config(self, args: list[str] | None, **process: Any) -> None:
        config = json.loads(json.dumps(self.config))
        config["process"].update(process)
        if args is not None:
            config["process"]["args"] = args
        (self.root / "config.json").write_text(json.dumps(config))

    def runc(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runc", "--root", str(self.state), *argv], capture_output=True, text=True,
                              timeout=60, check=check)

    def run(self, args: list[str], **process: Any) -> subprocess.CompletedProcess[str]:
        """Run ``args`` as the container's process and wait for it."""
        self._write_config(args, **process)
        container = self._new_id()
        return self.runc("run", "--bundle", str(self.root), container, check=False)

    def start(self, args: list[str] | None = None) -> tuple[str, subprocess.Popen[bytes]]:
        """Start a long-running container in the foreground; return its id and the runc process.

        The container's stdout and stderr go to ``<bundle>/<id>.log`` (see ``log``)."""
        self._write_config(args)
        container = self._new_id()
        with open(self.log_path(container), "wb") as log:
            proc = subprocess.Popen(
                ["runc", "--root", str(self.state), "run", "--bundle", str(self.root), container],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = self.runc("state", container, check=False)
            if state.returncode == 0 and json.loads(state.stdout)["status"] == "running":
                return container, proc
            time.sleep(0.05)
        raise AssertionError(f"container {container} did not start: {self.log(container)}")

    def log_path(self, container: str) -> Path:
        return self.root / f"{container}.log"

    def log(self, container: str) -> str:
        return self.log_path(container).read_text(errors="replace")

    def exec(self, container: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.runc("exec", container, *argv, check=False)

    def _new_id(self) -> str:
        container = f"critest-images-{uuid.uuid4().hex[:12]}"
        self.ids.append(container)
        return container

    def cleanup(self) -> None:
        for container in self.ids:
            self.runc("delete", "--force", container, check=False)
        for proc in self.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def bundle(kit_dir: Path, tmp_path: Path) -> Iterator[Any]:
    made: list[Bundle] = []

    def make(reference: str) -> Bundle:
        made.append(Bundle(OciLayout(kit_dir), reference, tmp_path / f"bundle{len(made)}"))
        return made[-1]

    yield make
    for each in made:
        each.cleanup()


def runc_test(test: Any) -> Any:
    """Marks a test that runs containers: root, runc."""
    return pytest.mark.root(needs_root(needs_runc(test)))


@runc_test
def test_runc_busybox_helpers(bundle: Any) -> None:
    box = bundle(catalog.BUSYBOX)
    # pgrep may look before the backgrounded sleep has exec'd: wait until it sees it.
    script = "sleep 30 & until pgrep sleep; do :; done; pgrep no-such-process || echo none; ipcs -m"
    result = box.run(["sh", "-c", script])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].isdigit() and lines[1] == "none"
    assert "------ Shared Memory Segments --------" in result.stdout
    nobody = box.run(["id", "-nu"], user={"uid": 65534, "gid": 65534})
    assert nobody.stdout == "nobody\n"


@runc_test
def test_runc_masked_applet_is_not_run_by_the_shell(bundle: Any) -> None:
    if has_standalone_shell(resolve_busybox()):
        pytest.skip("only a standalone-shell busybox is available (see critest-images --busybox)")
    box = bundle(catalog.BUSYBOX)
    box.config["linux"]["maskedPaths"].append("/bin/ls")
    result = box.run(["/bin/sh", "-c", "ls"])
    assert result.returncode != 0
    assert result.stderr == "/bin/sh: ls: Permission denied\n"


@runc_test
@pytest.mark.parametrize(("no_new_privileges", "expected"), [(True, 1000), (False, 0)])
def test_runc_nonewprivs(bundle: Any, no_new_privileges: bool, expected: int) -> None:
    box = bundle(catalog.NONEWPRIVS)
    result = box.run(None, user={"uid": 1000, "gid": 1000}, noNewPrivileges=no_new_privileges)
    assert result.stdout == f"Effective uid: {expected}\n", result.stderr


@runc_test
def test_runc_pause_reaps_and_exits_zero_on_sigterm(bundle: Any, kit_dir: Path) -> None:
    box = bundle(catalog.BUSYBOX)
    pause = image_files(OciLayout(kit_dir), catalog.PAUSE)["pause"][1]
    (box.root / "rootfs" / "pause").write_bytes(pause)
    (box.root / "rootfs" / "pause").chmod(0o755)
    container, proc = box.start(["/pause"])
    assert box.exec(container, "sh", "-c", "sleep 0.1 &").returncode == 0
    time.sleep(0.5)
    states = box.exec(container, "sh", "-c", "cat /proc/[0-9]*/stat").stdout
    assert not [line for line in states.splitlines() if line.split(") ")[1].startswith("Z")], states
    box.runc("kill", container, "TERM")
    assert proc.wait(timeout=10) == 0


@runc_test
def test_runc_nginx_looks_like_a_master_process(bundle: Any) -> None:
    box = bundle(catalog.NGINX)
    container, proc = box.start()
    script = "while [ ! -f /var/run/nginx.pid ]; do sleep 0.1; done; cat /var/run/nginx.pid"
    assert box.exec(container, "sh", "-c", script).stdout == "1\n"
    assert box.exec(container, "cat", "/proc/1/cmdline").stdout.startswith("nginx: master process")
    assert box.exec(container, "pidof", "nginx").stdout.split() == ["1"]
    page = box.exec(container, "sh", "-c", "for i in 1 2 3 4 5; do wget -q -O- http://127.0.0.1/ && exit; "
                                           "sleep 0.2; done; exit 1")
    assert "nginx" in page.stdout, page.stderr
    box.runc("kill", container, "TERM")
    assert proc.wait(timeout=10) == 0


@runc_test
def test_runc_httpd_serves_and_logs_its_name(bundle: Any) -> None:
    box = bundle(catalog.HTTPD)
    box.config["process"]["cwd"] = "/usr/local/apache2"
    container, proc = box.start()
    page = box.exec(container, "sh", "-c", "for i in 1 2 3 4 5; do wget -q -O- http://127.0.0.1/ && exit; "
                                           "sleep 0.2; done; exit 1")
    assert "It works!" in page.stdout, page.stderr
    assert box.exec(container, "echo", "httpd").stdout == "httpd\n"
    box.runc("kill", container, "TERM")
    assert proc.wait(timeout=10) == 0
    assert "httpd" in box.log(container)


def test_descriptor_round_trip() -> None:
    descriptor = Descriptor(MEDIA_TYPE_MANIFEST, "sha256:" + "1" * 64, 3)
    assert Descriptor.from_json(descriptor.to_json()) == descriptor
