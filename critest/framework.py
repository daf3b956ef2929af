"""What every conformance spec shares: spec naming, run settings, CRI helpers and cleanup.

Helper names follow upstream ``pkg/framework`` in snake_case: ``run_default_pod_sandbox`` does
an action, ``check_*`` asserts. Every helper that creates something registers its removal
with the spec's ``Cleanup``, so a failing spec leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
import yaml
from google.protobuf import text_format
from google.protobuf.message import Message

from cri_api import pb
from cri_api.client import CallRecord, ImageClient, RuntimeClient
from cri_api.errors import CRIError
from cri_api.streaming.upgrade import StreamingError
from critest import constants as c
from critest.testbed import host

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


# ---------------------------------------------------------------- spec naming (ginkgo tree)


@dataclass(frozen=True)
class Describe:
    """A ginkgo container node: its texts join with spaces into the spec's full name."""

    text: str

    def context(self, text: str) -> Describe:
        return Describe(f"{self.text} {text}")

    def when(self, text: str) -> Describe:
        # Ginkgo's When() prefixes its text with "when ".
        return Describe(f"{self.text} when {text}")

    def full_name(self, it_text: str) -> str:
        return f"{c.SPEC_PREFIX}{self.text} {it_text}"

    def it(self, text: str, *, serial: bool = False) -> Callable[[F], F]:
        """Name the decorated test after the upstream spec; ``serial`` keeps it out of parallel runs."""
        name = self.full_name(text)

        def mark(test: F) -> F:
            marked = pytest.mark.spec(name)(test)
            return pytest.mark.serial(marked) if serial else marked

        return mark

    def pending(self, text: str, reason: str = c.NOT_IMPLEMENTED, *, serial: bool = False) -> Callable[[], None]:
        """A registered spec that always skips with ``reason`` (a visible gap, same name as upstream)."""

        def test_pending() -> None:
            pytest.skip(reason)

        return self.it(text, serial=serial)(test_pending)


def spec_name(item: pytest.Item) -> str | None:
    """The upstream full name of a collected spec, or None for a test without one."""
    marker = item.get_closest_marker("spec")
    return str(marker.args[0]) if marker else None


# ---------------------------------------------------------------- run settings


@dataclass(frozen=True)
class TestImages:
    """The images a run uses; upstream's --test-images-file may override them."""

    default_container: str = c.DEFAULT_CONTAINER_IMAGE
    web_server: str = c.WEB_SERVER_IMAGE
    with_digest: str = f"{c.TEST_IMAGE_DIGEST_REPOSITORY}@{c.UPSTREAM_TEST_IMAGE_DIGEST}"


TEST_IMAGES_KEYS = (c.TEST_IMAGES_DEFAULT_KEY, c.TEST_IMAGES_WEB_SERVER_KEY, c.TEST_IMAGES_DIGEST_KEY)


class TestImagesError(ValueError):
    """A --test-images-file that cannot be used; the message says why in one line."""

    __test__ = False  # not a pytest test class despite the name


def load_test_images(path: str | None) -> TestImages:
    """Read the --test-images-file YAML; absent keys keep upstream's defaults."""
    if not path:
        return TestImages()
    images = _test_images_mapping(path)
    defaults = TestImages()
    return TestImages(
        default_container=images.get(c.TEST_IMAGES_DEFAULT_KEY) or defaults.default_container,
        web_server=images.get(c.TEST_IMAGES_WEB_SERVER_KEY) or defaults.web_server,
        with_digest=images.get(c.TEST_IMAGES_DIGEST_KEY) or defaults.with_digest,
    )


def _test_images_mapping(path: str) -> dict[str, str]:
    """The file's ``key: image reference`` pairs, or a TestImagesError saying what is wrong with it."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise TestImagesError(f"cannot read {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise TestImagesError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise TestImagesError(f"{path}: expected a mapping of {', '.join(TEST_IMAGES_KEYS)} to image references, "
                              f"got a {type(data).__name__}")
    unknown = sorted(str(key) for key in data if key not in TEST_IMAGES_KEYS)
    if unknown:
        raise TestImagesError(f"{path}: unknown key {', '.join(unknown)} (known: {', '.join(TEST_IMAGES_KEYS)})")
    for key, value in data.items():
        if value is not None and not isinstance(value, str):
            raise TestImagesError(f"{path}: {key} must be an image reference (a string), got {value!r}")
    return {key: value for key, value in data.items() if value}


@dataclass(frozen=True)
class TestContext:
    """Everything a run was told on the command line (upstream's TestContext)."""

    __test__ = False  # not a pytest test class despite the name

    runtime_endpoint: str
    image_endpoint: str
    runtime_timeout: float
    image_timeout: float
    runtime_handler: str = ""
    registry_prefix: str = c.DEFAULT_REGISTRY_PREFIX
    images: TestImages = field(default_factory=TestImages)
    websocket_exec: bool = False
    websocket_attach: bool = False
    websocket_portforward: bool = False
    nri_socket: str = ""
    handler_skips: bool = True  # False with --no-handler-skips: run the specs a handler's limits would skip


# ---------------------------------------------------------------- CRI call log (for failure reports)


class CallLog:
    """Collects the CRI calls of the running spec; the client's observer feeds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def __call__(self, record: CallRecord) -> None:
        with self._lock:
            self._records.append(record)

    def reset(self) -> None:
        with self._lock:
            self._records = []

    def records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._records)

    def render(self, limit: int = 60) -> str:
        """One line per call: method, status code, duration and the request's key fields."""
        records = self.records()
        lines = [format_call(record) for record in records[-limit:]]
        if len(records) > limit:
            lines.insert(0, f"... {len(records) - limit} earlier calls omitted")
        return "\n".join(lines)


def format_call(record: CallRecord, width: int = 400) -> str:
    request = text_format.MessageToString(record.request, as_one_line=True)
    if len(request) > width:
        request = request[: width - 3] + "..."
    outcome = record.code.name + (f" ({record.details})" if record.details else "")
    return f"{record.method} -> {outcome} [{record.seconds * 1000:.0f} ms] {{{request}}}"


# ---------------------------------------------------------------- cleanup


class CleanupFailed(Exception):
    """A spec's cleanup could not undo everything: the spec leaves resources behind, which is an error."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(describe_leftovers(problems))


def describe_leftovers(problems: list[str]) -> str:
    return "cleanup failed, left behind: " + "; ".join(problems)


class Cleanup:
    """Undo actions of one spec, run last-in first-out; failures are collected, not raised."""

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], object]]] = []

    def add(self, what: str, action: Callable[[], object]) -> None:
        self._actions.append((what, action))

    def run(self) -> list[str]:
        problems: list[str] = []
        while self._actions:
            what, action = self._actions.pop()
            try:
                action()
            except CRIError as exc:
                # Removing what the spec already removed answers NotFound on some runtimes; nothing leaked.
                if exc.code != grpc.StatusCode.NOT_FOUND:
                    problems.append(f"{what}: {exc}")
            except Exception as exc:
                problems.append(f"{what}: {exc}")
        return problems


# ---------------------------------------------------------------- known runtime quirks


@dataclass(frozen=True)
class RuntimeQuirk:
    """A documented deviation of one runtime's versions from the CRI contract."""

    runtime_name: str
    version_prefix: str
    reason: str

    def applies_to(self, version: pb.VersionResponse) -> bool:
        # Release builds report "v1.6.20", distribution builds "1.6.20~ds1": the "v" is not part of the version.
        runtime_version = version.runtime_version.removeprefix("v")
        return version.runtime_name == self.runtime_name and runtime_version.startswith(self.version_prefix)


@dataclass(frozen=True)
class HandlerLimitation:
    """Something the OCI runtime behind a runtime handler cannot do, so that a spec cannot pass with it.

    Keyed on the handler's name as it is conventionally configured (``runsc`` for gVisor): critest cannot see which
    OCI runtime a handler runs. ``runtime_name`` narrows it to one CRI runtime when the limit comes from how that
    runtime drives the handler rather than from the handler itself.
    """

    handler: str
    reason: str
    runtime_name: str = ""

    def applies_to(self, handler: str, version: pb.VersionResponse) -> bool:
        return handler == self.handler and self.runtime_name in ("", version.runtime_name)


def skip_for_handler(cri: Cri, *limitations: HandlerLimitation) -> None:
    """Skip the spec, saying which handler and why, if the run's --runtime-handler has one of ``limitations``.

    A deliberate difference from upstream, which has no such skips; ``--no-handler-skips`` turns them off.
    """
    if not cri.context.handler_skips:
        return
    for limitation in limitations:
        if limitation.applies_to(cri.context.runtime_handler, cri.version):
            pytest.skip(f"{limitation.handler}: {limitation.reason}")


# ---------------------------------------------------------------- the per-spec handle


@dataclass
class Cri:
    """What a spec works with: both clients, the run settings and its cleanup list."""

    runtime: RuntimeClient
    images: ImageClient
    context: TestContext
    version: pb.VersionResponse
    cleanup: Cleanup = field(default_factory=Cleanup)
    cgroup_parent: str = ""

    @contextlib.contextmanager
    def known_quirk(self, quirk: RuntimeQuirk) -> Iterator[None]:
        """Turn a failure inside the block into an expected failure on the runtime the quirk names."""
        try:
            yield
        except (CRIError, AssertionError, StreamingError) as exc:
            if quirk.applies_to(self.version):
                pytest.xfail(f"{quirk.reason} ({exc})")
            raise


def new_uuid() -> str:
    return str(uuid.uuid4())


def eventually(probe: Callable[[], T | None], timeout: float, interval: float = 0.5,
               what: str = "condition") -> T:
    """Poll ``probe`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def expect_error(action: Callable[[], object], what: str) -> CRIError:
    """Run ``action`` and return the CRIError it must raise."""
    try:
        action()
    except CRIError as exc:
        return exc
    raise AssertionError(f"expected {what} to fail, but it succeeded")


def one_line(message: Message) -> str:
    return text_format.MessageToString(message, as_one_line=True)


# ---------------------------------------------------------------- pod sandboxes


def build_pod_sandbox_metadata(name: str, uid: str, namespace: str,
                               attempt: int = c.DEFAULT_ATTEMPT) -> pb.PodSandboxMetadata:
    return pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=attempt)


def default_pod_sandbox_config(cri: Cri, prefix: str) -> pb.PodSandboxConfig:
    """Upstream's default pod: unique name, uid and namespace, attempt 2, the run's cgroup parent."""
    metadata = build_pod_sandbox_metadata(
        prefix + new_uuid(), c.DEFAULT_UID_PREFIX + new_uuid(), c.DEFAULT_NAMESPACE_PREFIX + new_uuid()
    )
    return pb.PodSandboxConfig(metadata=metadata, linux=pb.LinuxPodSandboxConfig(cgroup_parent=cri.cgroup_parent))


def detect_cgroup_parent(runtime: RuntimeClient) -> str:
    """Upstream's choice: none for the cgroupfs driver, a systemd-style slice otherwise or on error."""
    try:
        response = runtime.runtime_config(pb.RuntimeConfigRequest())
    except CRIError:
        return c.DEFAULT_CGROUP_PARENT
    if response.linux.cgroup_driver == pb.CgroupDriver.CGROUPFS:
        return ""
    return c.DEFAULT_CGROUP_PARENT


def run_pod_sandbox(cri: Cri, config: pb.PodSandboxConfig) -> str:
    """RunPodSandbox with the run's handler; stop and remove it at cleanup."""
    response = cri.runtime.run_pod_sandbox(
        pb.RunPodSandboxRequest(config=config, runtime_handler=cri.context.runtime_handler)
    )
    pod_id = response.pod_sandbox_id
    cri.cleanup.add(f"removing pod sandbox {pod_id}", lambda: remove_pod_sandbox(cri, pod_id))
    cri.cleanup.add(f"stopping pod sandbox {pod_id}", lambda: stop_pod_sandbox(cri, pod_id))
    return pod_id


def run_default_pod_sandbox(cri: Cri, prefix: str) -> tuple[str, pb.PodSandboxConfig]:
    config = default_pod_sandbox_config(cri, prefix)
    return run_pod_sandbox(cri, config), config


def stop_pod_sandbox(cri: Cri, pod_id: str) -> None:
    cri.runtime.stop_pod_sandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))


def remove_pod_sandbox(cri: Cri, pod_id: str) -> None:
    cri.runtime.remove_pod_sandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def pod_sandbox_status(cri: Cri, pod_id: str, verbose: bool = False) -> pb.PodSandboxStatus:
    request = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=verbose)
    return cri.runtime.pod_sandbox_status(request).status


def list_pod_sandbox_ids(cri: Cri, pod_filter: pb.PodSandboxFilter | None = None) -> list[str]:
    response = cri.runtime.list_pod_sandbox(pb.ListPodSandboxRequest(filter=pod_filter))
    return [item.id for item in response.items]


def pod_ip(cri: Cri, pod_id: str) -> str:
    ip = pod_sandbox_status(cri, pod_id).network.ip
    assert ip, f"pod sandbox {pod_id} reports no IP address"
    return ip


# ---------------------------------------------------------------- images


def has_domain(name: str) -> bool:
    first, sep, _ = name.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def prepare_image_name(name: str, registry_prefix: str) -> str:
    """Apply --registry-prefix as upstream does, and add ``:latest`` to an untagged name."""
    if not has_domain(name):
        name = f"{registry_prefix}/{name}"
    elif registry_prefix != c.DEFAULT_REGISTRY_PREFIX:
        name = f"{registry_prefix}/{name.partition('/')[2]}"
    last_component = name.rsplit("/", 1)[-1]
    if ":" not in last_component and "@" not in last_component:
        name += ":latest"
    return name


def image_status(cri: Cri, ref: str) -> pb.Image | None:
    """The image ``ref`` names, or None when the runtime does not have it."""
    response = cri.images.image_status(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)))
    return response.image if response.HasField("image") else None


def pull_image(cri: Cri, ref: str, pod_config: pb.PodSandboxConfig | None = None) -> str:
    """PullImage and return the image ref the runtime answers."""
    request = pb.PullImageRequest(image=pb.ImageSpec(image=ref), sandbox_config=pod_config)
    return cri.images.pull_image(request).image_ref


def pull_public_image(cri: Cri, name: str, pod_config: pb.PodSandboxConfig | None = None) -> str:
    """Pull ``name`` (registry prefix applied) unless present; return the image id."""
    ref = prepare_image_name(name, cri.context.registry_prefix)
    status = image_status(cri, ref)
    if status is None:
        pull_image(cri, ref, pod_config)
        status = image_status(cri, ref)
    assert status is not None, f"image {ref} is not present after PullImage"
    return status.id


def remove_image(cri: Cri, ref: str) -> None:
    cri.images.remove_image(pb.RemoveImageRequest(image=pb.ImageSpec(image=ref)))


def remove_image_quietly(cri: Cri, ref: str) -> None:
    with contextlib.suppress(CRIError):
        remove_image(cri, ref)


def list_images(cri: Cri) -> list[pb.Image]:
    return list(cri.images.list_images(pb.ListImagesRequest()).images)


# ---------------------------------------------------------------- containers


def container_config(name: str, image: str, command: tuple[str, ...] | list[str] = c.DEFAULT_CONTAINER_COMMAND,
                     **fields: Any) -> pb.ContainerConfig:
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=c.DEFAULT_ATTEMPT),
        image=pb.ImageSpec(image=image, user_specified_image=image),
        command=list(command),
        linux=fields.pop("linux", pb.LinuxContainerConfig()),
        **fields,
    )


def create_container(cri: Cri, pod_id: str, config: pb.ContainerConfig, pod_config: pb.PodSandboxConfig) -> str:
    """Make sure the image is there, CreateContainer, and remove the container at cleanup."""
    pull_public_image(cri, config.image.image, pod_config)
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
    container_id = cri.runtime.create_container(request).container_id
    cri.cleanup.add(f"removing container {container_id}", lambda: remove_container(cri, container_id))
    return container_id


def default_container_config(cri: Cri, prefix: str, command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND,
                             **fields: Any) -> pb.ContainerConfig:
    return container_config(prefix + new_uuid(), cri.context.images.default_container, command, **fields)


def create_default_container(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig, prefix: str,
                             command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND, **fields: Any) -> str:
    return create_container(cri, pod_id, default_container_config(cri, prefix, command, **fields), pod_config)


def create_pause_container(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig, prefix: str) -> str:
    return create_default_container(cri, pod_id, pod_config, prefix, c.PAUSE_CONTAINER_COMMAND)


def start_container(cri: Cri, container_id: str) -> None:
    cri.runtime.start_container(pb.StartContainerRequest(container_id=container_id))


def stop_container(cri: Cri, container_id: str, timeout: int = c.DEFAULT_STOP_TIMEOUT_SECONDS) -> None:
    cri.runtime.stop_container(pb.StopContainerRequest(container_id=container_id, timeout=timeout))


def remove_container(cri: Cri, container_id: str) -> None:
    cri.runtime.remove_container(pb.RemoveContainerRequest(container_id=container_id))


def container_status(cri: Cri, container_id: str, verbose: bool = False) -> pb.ContainerStatus:
    request = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
    return cri.runtime.container_status(request).status


def wait_for_container_state(cri: Cri, container_id: str, state: int, timeout: float = 60.0) -> pb.ContainerStatus:
    name = pb.ContainerState.Name(state)

    def reached() -> pb.ContainerStatus | None:
        status = container_status(cri, container_id)
        return status if status.state == state else None

    return eventually(reached, timeout, what=f"container {container_id} to be {name}")


def start_and_wait_running(cri: Cri, container_id: str) -> None:
    start_container(cri, container_id)
    wait_for_container_state(cri, container_id, pb.ContainerState.CONTAINER_RUNNING)


def create_and_start(cri: Cri, pod_id: str, config: pb.ContainerConfig, pod_config: pb.PodSandboxConfig) -> str:
    """create_container, then start it and wait until it runs."""
    container_id = create_container(cri, pod_id, config, pod_config)
    start_and_wait_running(cri, container_id)
    return container_id


def start_default_container(cri: Cri, pod_id: str, pod_config: pb.PodSandboxConfig, prefix: str,
                            command: tuple[str, ...] = c.DEFAULT_CONTAINER_COMMAND, **fields: Any) -> str:
    """create_default_container, then start it and wait until it runs."""
    return create_and_start(cri, pod_id, default_container_config(cri, prefix, command, **fields), pod_config)


def exec_sync(cri: Cri, container_id: str, command: list[str], timeout: int = 30) -> pb.ExecSyncResponse:
    request = pb.ExecSyncRequest(container_id=container_id, cmd=command, timeout=timeout)
    # The RPC deadline must outlast the exec's own timeout, which the runtime enforces.
    return cri.runtime.exec_sync(request, timeout=max(cri.runtime.timeout, timeout + 30))


def exec_ok(cri: Cri, container_id: str, command: list[str], timeout: int = 30) -> str:
    """ExecSync that must exit 0; returns stdout."""
    response = exec_sync(cri, container_id, command, timeout)
    assert response.exit_code == 0, (
        f"{command} exited {response.exit_code}: stdout={response.stdout!r} stderr={response.stderr!r}"
    )
    return response.stdout.decode()


def container_log_lines(log_path: Path, stream: str | None = None) -> list[str]:
    """The messages of a CRI-format log file: ``<RFC3339Nano> <stream> <tag> <message>``."""
    if not log_path.exists():
        return []
    messages = []
    for line in log_path.read_text(errors="replace").splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and (stream is None or parts[1] == stream):
            messages.append(parts[3])
    return messages


HTTP_WAIT_SECONDS = 60.0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for_http_ok(url: str, timeout: float = HTTP_WAIT_SECONDS) -> None:
    eventually(lambda: http_ok(url), timeout, what=f"HTTP 200 from {url}")


def wait_for_log(log_path: Path, expected: str, stream: str | None = None, timeout: float = 60.0) -> list[str]:
    def found() -> list[str] | None:
        lines = container_log_lines(log_path, stream)
        return lines if any(expected in line for line in lines) else None

    return eventually(found, timeout, what=f"{expected!r} in {log_path}")


# ---------------------------------------------------------------- runtime features


def runtime_status(cri: Cri, verbose: bool = False) -> pb.StatusResponse:
    return cri.runtime.status(pb.StatusRequest(verbose=verbose))


def handler_features(cri: Cri) -> pb.RuntimeHandlerFeatures | None:
    """The features the runtime reports for the run's --runtime-handler, if it reports any."""
    for handler in runtime_status(cri).runtime_handlers:
        if handler.name == cri.context.runtime_handler:
            return handler.features
    return None


def skip_unless_handler_feature(cri: Cri, feature: str) -> None:
    features = handler_features(cri)
    if features is None or not getattr(features, feature):
        handler = cri.context.runtime_handler or "default"
        pytest.skip(f"runtime handler {handler!r} does not report feature {feature}")


# ---------------------------------------------------------------- host mounts (specs that mount on the test host)


MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)


def _os_error(what: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}")


def host_mount(source: str, target: Path, fstype: str = "", flags: int = 0) -> None:
    """mount(2) on the test host (the runtime's mount namespace)."""
    if _LIBC.mount(source.encode(), str(target).encode(), fstype.encode() or None, flags, None) != 0:
        raise _os_error(f"mount {source or '(none)'} on {target} (flags {flags:#x})")


def bind_mount(source: Path, target: Path) -> None:
    host_mount(str(source), target, flags=MS_BIND | MS_REC)


def set_mount_propagation(target: Path, propagation: int) -> None:
    """Make the mount at ``target`` and every mount below it MS_PRIVATE, MS_SLAVE or MS_SHARED."""
    host_mount("none", target, flags=propagation | MS_REC)


def unmount_tree(path: Path, attempts: int = 10) -> None:
    """Lazily unmount everything mounted at or below ``path``, stacked mounts included."""
    for _ in range(attempts):
        if not host.mounts_under(path):
            return
        failed = host.unmount_all_under(path)
        if failed:
            raise OSError(f"umount under {path}: {'; '.join(failed)}")
    raise OSError(f"mounts remain under {path}: {host.mounts_under(path)}")


def remove_host_dir(path: Path) -> None:
    """Remove a directory the spec made, refusing while anything is still mounted below it."""
    remaining = host.mounts_under(path) if path.exists() else []
    if remaining:
        raise OSError(f"not removing {path}: still mounted below it: {remaining}")
    shutil.rmtree(path, ignore_errors=True)
