"""Every image the conformance suite and the benchmark pull, declared as data.

Each ``ImageSpec`` keeps the upstream references unchanged; ``build`` turns the specs into blobs.
Only the properties the specs rely on are reproduced (see the comments on each image).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# --------------------------------------------------------------------------- where things go

def _default_cache_dir() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "critest-images"


DEFAULT_CACHE_DIR: Path = _default_cache_dir()

# --------------------------------------------------------------------------- the platform

_GOARCH_BY_MACHINE = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

HOST_ARCH: str = _GOARCH_BY_MACHINE.get(platform.machine(), platform.machine())

# --------------------------------------------------------------------------- image names

E2E_PREFIX = "registry.k8s.io/e2e-test-images"
STAGING_PREFIX = "gcr.io/k8s-staging-cri-tools"

BUSYBOX = f"{E2E_PREFIX}/busybox:1.29-2"
NGINX = f"{E2E_PREFIX}/nginx:1.14-2"
HTTPD = f"{E2E_PREFIX}/httpd:2.4.39-4"
NONEWPRIVS = f"{E2E_PREFIX}/nonewprivs:1.3"
HOSTNET_NGINX = f"{STAGING_PREFIX}/hostnet-nginx-{HOST_ARCH}:latest"

PAUSE = "registry.k8s.io/pause:3.10"
PAUSE_3_9 = "registry.k8s.io/pause:3.9"
PAUSE_3_9_LEGACY = "k8s.gcr.io/pause:3.9"
PAUSE_3_6 = "registry.k8s.io/pause:3.6"

TEST_IMAGE_TAG = f"{STAGING_PREFIX}/test-image-tag:test"
TEST_IMAGE_ALL_REFERENCES = f"{STAGING_PREFIX}/test-image-tag:all"
TEST_IMAGE_LATEST = f"{STAGING_PREFIX}/test-image-latest:latest"
# Pulled by digest only. Upstream's digest cannot be reproduced: images.json holds the kit's.
TEST_IMAGE_DIGEST_REPOSITORY = f"{STAGING_PREFIX}/test-image-digest"
TEST_IMAGES_DIFFERENT = tuple(f"{STAGING_PREFIX}/test-image-{n}:latest" for n in (1, 2, 3))
TEST_IMAGES_SAME = tuple(f"{STAGING_PREFIX}/test-image-tags:{n}" for n in (1, 2, 3))
TEST_IMAGE_USER_UID = f"{STAGING_PREFIX}/test-image-user-uid:latest"
TEST_IMAGE_USER_USERNAME = f"{STAGING_PREFIX}/test-image-user-username:latest"
TEST_IMAGE_USER_UID_GROUP = f"{STAGING_PREFIX}/test-image-user-uid-group:latest"
TEST_IMAGE_USER_USERNAME_GROUP = f"{STAGING_PREFIX}/test-image-user-username-group:latest"
TEST_IMAGE_PREDEFINED_GROUP = f"{STAGING_PREFIX}/test-image-predefined-group:latest"

BENCHMARK_BUSYBOX_ECR = tuple(
    f"public.ecr.aws/docker/library/busybox:{tag}"
    for tag in ("1.35.0-glibc", "1-uclibc", "1", "1-glibc", "1-musl")
)
BENCHMARK_BUSYBOX_HUB = tuple(
    f"docker.io/library/busybox:{tag}" for tag in ("1.36", "latest", "1", "1-glibc", "1-musl")
)

# Registries the local registry stands in for, as a mirror that keeps the repository path.
MIRRORED_REGISTRIES = ("registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "quay.io", "public.ecr.aws")

# --------------------------------------------------------------------------- references

DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference: ``domain/path:tag`` or ``domain/path@digest``."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse like the container tools do: docker.io is implied, so is ``library/`` and ``:latest``."""
        name, _, digest = text.partition("@")
        tag = ""
        if name.rfind(":") > name.rfind("/"):
            name, _, tag = name.rpartition(":")
        first, slash, rest = name.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            domain, path = first, rest
        else:
            domain, path = DOCKER_HUB, name
        if domain in ("index.docker.io", "registry-1.docker.io"):
            domain = DOCKER_HUB
        if domain == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if not tag and not digest:
            tag = "latest"
        if not path or not all(part for part in path.split("/")):
            raise ValueError(f"invalid image reference {text!r}")
        return cls(domain, path, tag, digest)

    @property
    def repository(self) -> str:
        """``domain/path``, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def version(self) -> str:
        """What a registry's manifest endpoint takes: the digest if there is one, else the tag."""
        return self.digest or self.tag

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.domain, self.path, "", digest)

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"


def canonical(reference: str) -> str:
    """The fully qualified form of ``reference`` (``busybox`` -> ``docker.io/library/busybox:latest``)."""
    return str(Reference.parse(reference))


def mirror_location(reference: str) -> tuple[str, str]:
    """(repository, tag or digest) under which a path-keeping mirror serves ``reference``."""
    parsed = Reference.parse(reference)
    return parsed.path, parsed.version

# --------------------------------------------------------------------------- image contents

EntryKind = Literal["dir", "file", "program"]


@dataclass(frozen=True)
class Entry:
    """One file-system entry of a layer. ``path`` is relative to the image root."""

    path: str
    kind: EntryKind
    data: bytes = b""
    target: str = ""  # for a program: the name of its C source under src/
    mode: int = 0o644
    uid: int = 0
    gid: int = 0


def directory(path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> Entry:
    return Entry(path, "dir", mode=mode, uid=uid, gid=gid)


def text_file(path: str, text: str, mode: int = 0o644) -> Entry:
    return Entry(path, "file", data=text.encode(), mode=mode)


def program(path: str, name: str, mode: int = 0o755) -> Entry:
    """The static binary compiled from ``src/<name>.c``."""
    return Entry(path, "program", target=name, mode=mode)


@dataclass(frozen=True)
class LayerSpec:
    """A layer's entries. ``with_busybox`` adds the busybox binary, its applet hard links in /bin
    and the shared libraries it needs; ``build`` finds those on the host."""

    name: str
    entries: tuple[Entry, ...]
    with_busybox: bool = False


@dataclass(frozen=True)
class ImageConfig:
    """The runtime part of an OCI image configuration."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageSpec:
    """One image and the references it is published under.

    ``multi_arch`` images are published as an OCI index with one manifest for ``HOST_ARCH``, like
    upstream's multi-arch images. A ``digest_only`` image is pushed by digest alone: its references
    name a repository and the built digest completes them.
    """

    name: str  # also recorded as a label, which makes every spec a distinct image
    references: tuple[str, ...]
    layers: tuple[LayerSpec, ...]
    config: ImageConfig = field(default_factory=ImageConfig)
    multi_arch: bool = True
    digest_only: bool = False

# --------------------------------------------------------------------------- shared layers

_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

_GROUP = """\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
www-data:x:33:
operator:x:37:
users:x:100:
nogroup:x:65534:
"""

# A dynamically linked busybox resolves users through glibc's NSS; say plainly to use the files.
_NSSWITCH = """\
passwd: files
group: files
shadow: files
hosts: files dns
"""

BUSYBOX_LAYER = LayerSpec(
    name="busybox",
    with_busybox=True,
    entries=(
        directory("bin"),
        directory("dev"),
        directory("etc"),
        directory("home"),
        directory("proc"),
        directory("root", mode=0o700),
        directory("run"),
        directory("sys"),
        directory("tmp", mode=0o1777),
        directory("usr"),
        directory("usr/bin"),
        directory("usr/local"),
        directory("usr/local/bin"),
        directory("usr/sbin"),
        directory("var"),
        directory("var/lib"),
        directory("var/run"),
        directory("var/spool"),
        directory("var/spool/mail"),
        directory("var/tmp", mode=0o1777),
        directory("var/www"),
        text_file("etc/passwd", _PASSWD),
        text_file("etc/group", _GROUP),
        text_file("etc/nsswitch.conf", _NSSWITCH),
        # Applets Debian's busybox lacks but the specs exec (`pgrep sleep`, `ipcs -m`).
        program("bin/pgrep", "pgrep"),
        program("bin/ipcs", "ipcs"),
    ),
)

PAUSE_LAYER = LayerSpec(name="pause", entries=(program("pause", "pause"),))

# --------------------------------------------------------------------------- per-image layers

def _marker_layer(marker: str) -> LayerSpec:
    """The upstream image-test Dockerfile adds one empty file named after the image."""
    return LayerSpec(name=f"marker-{marker}", entries=(text_file(marker, ""),))


def _nginx_layer(port: int) -> LayerSpec:
    site = f"server {{\n    listen {port};\n    root /usr/share/nginx/html;\n    index index.html;\n}}\n"
    return LayerSpec(
        name=f"nginx-{port}",
        entries=(
            directory("etc/nginx"),
            directory("etc/nginx/conf.d"),
            text_file("etc/nginx/conf.d/default.conf", site),
            directory("usr/share"),
            directory("usr/share/nginx"),
            directory("usr/share/nginx/html"),
            text_file("usr/share/nginx/html/index.html", "<html><body><h1>Welcome to nginx!</h1></body></html>\n"),
            program("usr/sbin/nginx", "nginx"),
        ),
    )


# Apache's own launcher logs lines naming httpd; the multi-container spec greps the log for it.
_HTTPD_FOREGROUND = """\
#!/bin/sh
# Stand-in for Apache's httpd-foreground: serve the document root on port 80 until stopped.
echo "httpd: serving /usr/local/apache2/htdocs on port 80" >&2
httpd -f -v -p 80 -h /usr/local/apache2/htdocs &
server=$!
trap 'kill -TERM "$server" 2>/dev/null; wait "$server"; exit 0' TERM INT QUIT
wait "$server"
"""

HTTPD_LAYER = LayerSpec(
    name="httpd",
    entries=(
        directory("usr/local/apache2"),
        directory("usr/local/apache2/bin"),
        text_file("usr/local/apache2/bin/httpd-foreground", _HTTPD_FOREGROUND, mode=0o755),
        directory("usr/local/apache2/htdocs"),
        text_file("usr/local/apache2/htdocs/index.html", "<html><body><h1>It works!</h1></body></html>\n"),
    ),
)

# The entrypoint is setuid root: "Effective uid: 0" unless no_new_privs blocks the escalation.
NONEWPRIVS_LAYER = LayerSpec(name="nonewprivs", entries=(program("usr/local/bin/nnp", "nnp", mode=0o4755),))

_DEFAULT_USER_UID = 1000
_IMAGE_GROUP_GID = 50000

# default-user (uid 1000) is in group-defined-in-image (gid 50000), only through /etc/group.
PREDEFINED_GROUP_LAYER = LayerSpec(
    name="predefined-group",
    entries=(
        text_file("etc/passwd", _PASSWD + f"default-user:x:{_DEFAULT_USER_UID}:{_DEFAULT_USER_UID}:"
                  "Linux User,,,:/home/default-user:/bin/sh\n"),
        text_file("etc/group", _GROUP + f"default-user:x:{_DEFAULT_USER_UID}:\n"
                  f"group-defined-in-image:x:{_IMAGE_GROUP_GID}:default-user\n"),
        directory("home/default-user", uid=_DEFAULT_USER_UID, gid=_DEFAULT_USER_UID),
    ),
)

# --------------------------------------------------------------------------- the catalog

_SHELL = ImageConfig(cmd=("sh",))


def _busybox_image(name: str, references: tuple[str, ...], multi_arch: bool = True) -> ImageSpec:
    return ImageSpec(name, references, (BUSYBOX_LAYER,), _SHELL, multi_arch=multi_arch)


def _marked_image(name: str, references: tuple[str, ...], marker: str, digest_only: bool = False) -> ImageSpec:
    return ImageSpec(name, references, (BUSYBOX_LAYER, _marker_layer(marker)), _SHELL, digest_only=digest_only)


def _user_image(name: str, reference: str, user: str) -> ImageSpec:
    return ImageSpec(name, (reference,), (BUSYBOX_LAYER,), ImageConfig(cmd=("sh",), user=user))


def _pause_image(version: str, references: tuple[str, ...]) -> ImageSpec:
    config = ImageConfig(entrypoint=("/pause",), user="65535:65535", working_dir="/")
    return ImageSpec(f"pause-{version}", references, (PAUSE_LAYER,), config)


def _nginx_image(name: str, references: tuple[str, ...], port: int, stop_signal: str) -> ImageSpec:
    config = ImageConfig(
        cmd=("nginx", "-g", "daemon off;"), exposed_ports=(f"{port}/tcp",), stop_signal=stop_signal,
    )
    return ImageSpec(name, references, (BUSYBOX_LAYER, _nginx_layer(port)), config)


_HTTPD_CONFIG = ImageConfig(
    cmd=("httpd-foreground",),
    env=("PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    working_dir="/usr/local/apache2",
    exposed_ports=("80/tcp",),
)

IMAGES: tuple[ImageSpec, ...] = (
    # The default test container: busybox applets, pgrep, ipcs, users root and nobody.
    _busybox_image("e2e-busybox", (BUSYBOX,)),
    _nginx_image("e2e-nginx", (NGINX,), port=80, stop_signal="SIGTERM"),
    _nginx_image("hostnet-nginx", (HOSTNET_NGINX, f"{STAGING_PREFIX}/hostnet-nginx:latest"),
                 port=12003, stop_signal="SIGQUIT"),
    ImageSpec("e2e-httpd", (HTTPD,), (BUSYBOX_LAYER, HTTPD_LAYER), _HTTPD_CONFIG),
    ImageSpec("e2e-nonewprivs", (NONEWPRIVS,), (BUSYBOX_LAYER, NONEWPRIVS_LAYER),
              ImageConfig(entrypoint=("/usr/local/bin/nnp",))),
    _marked_image("test-image-tag-test", (TEST_IMAGE_TAG,), "test"),
    _marked_image("test-image-tag-all", (TEST_IMAGE_ALL_REFERENCES,), "all"),
    _marked_image("test-image-latest", (TEST_IMAGE_LATEST,), "test-image-latest"),
    _marked_image("test-image-digest", (TEST_IMAGE_DIGEST_REPOSITORY,), "test-image-digest", digest_only=True),
    *(_marked_image(f"test-image-{n}", (ref,), f"test-image-{n}") for n, ref in enumerate(TEST_IMAGES_DIFFERENT, 1)),
    _marked_image("test-image-tags", TEST_IMAGES_SAME, "same-image"),
    _user_image("test-image-user-uid", TEST_IMAGE_USER_UID, "1002"),
    _user_image("test-image-user-username", TEST_IMAGE_USER_USERNAME, "www-data"),
    _user_image("test-image-user-uid-group", TEST_IMAGE_USER_UID_GROUP, "1003:1004"),
    _user_image("test-image-user-username-group", TEST_IMAGE_USER_USERNAME_GROUP, "www-data:1004"),
    ImageSpec("test-image-predefined-group", (TEST_IMAGE_PREDEFINED_GROUP,),
              (BUSYBOX_LAYER, PREDEFINED_GROUP_LAYER), ImageConfig(cmd=("sh",), user=str(_DEFAULT_USER_UID))),
    _pause_image("3.6", (PAUSE_3_6,)),
    # One image under two registries: the registry-alias specs expect a single image ID.
    _pause_image("3.9", (PAUSE_3_9, PAUSE_3_9_LEGACY)),
    _pause_image("3.10", (PAUSE,)),
    # Benchmark pulls: distinct images (so removing one never removes another), plain manifests.
    *(_busybox_image(f"benchmark-{ref.replace('/', '-')}", (ref,), multi_arch=False)
      for ref in BENCHMARK_BUSYBOX_ECR + BENCHMARK_BUSYBOX_HUB),
)

