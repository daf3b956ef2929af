"""pytest glue for the conformance suites: options, fixtures, spec names, failure reports, JUnit.

Loaded explicitly (``-p critest.plugin``) by the ``critest`` command, never through an entry
point, so it stays out of every other pytest run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cri_api import pb
from cri_api.client import ImageClient, RuntimeClient
from cri_api.config import parse_duration
from critest import constants as c
from critest.framework import (
    CallLog,
    CleanupFailed,
    Cri,
    TestContext,
    detect_cgroup_parent,
    load_test_images,
    spec_name,
)
from critest.report import AREA_PROPERTY, LEFT_BEHIND_PROPERTY, SPEC_PROPERTY

SELINUX_ENFORCE = Path("/sys/fs/selinux/enforce")
CALL_LOG_KEY = pytest.StashKey[CallLog]()


def add_critest_options(addoption: Callable[..., Any]) -> None:
    """Upstream critest's flags, by the same names (pytest spelling)."""
    addoption("--runtime-endpoint", default="", help="CRI RuntimeService endpoint (unix://PATH).")
    addoption("--image-endpoint", default="", help="CRI ImageService endpoint; default: the runtime endpoint.")
    addoption("--runtime-service-timeout", default=c.DEFAULT_SERVICE_TIMEOUT,
              help="Timeout of each runtime service call, a Go duration (default 300s).")
    addoption("--image-service-timeout", default=c.DEFAULT_SERVICE_TIMEOUT,
              help="Timeout of each image service call, a Go duration (default 300s).")
    addoption("--runtime-handler", default="", help="Runtime handler passed to every RunPodSandbox.")
    addoption("--test-images-file", default="", help="YAML file overriding the test images.")
    addoption("--registry-prefix", default=c.DEFAULT_REGISTRY_PREFIX,
              help="Registry prefix for the images the specs pull.")
    addoption("--websocket-exec", action="store_true", help="Use WebSocket instead of SPDY for exec.")
    addoption("--websocket-attach", action="store_true", help="Use WebSocket instead of SPDY for attach.")
    addoption("--websocket-portforward", action="store_true",
              help="Use WebSocket instead of SPDY for port-forward.")
    addoption("--nri-socket", default="", help="NRI socket path; the NRI specs are registered only with it.")
    addoption("--no-handler-skips", action="store_true",
              help="Run the specs a runtime handler's known limits (runsc) would skip, instead of skipping them.")
    addoption("--critest-focus", action="append", default=[], metavar="REGEX",
              help="Run only specs whose full name matches (repeatable, OR-ed).")
    addoption("--critest-skip", action="append", default=[], metavar="REGEX",
              help="Skip specs whose full name matches (repeatable, OR-ed).")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_critest_options(parser.getgroup("critest", "CRI validation (critest)").addoption)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "spec(name): the upstream full name of a conformance spec")
    config.addinivalue_line("markers", "serial: runs alone, never beside other specs (ginkgo Serial)")
    config.stash[CALL_LOG_KEY] = CallLog()


def selinux_enabled() -> bool:
    return SELINUX_ENFORCE.exists()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Upstream registers these specs only on SELinux hosts / with an NRI socket.
    if collection_path.name == "test_selinux.py" and not selinux_enabled():
        return True
    if collection_path.name == "test_nri.py" and not config.getoption("nri_socket"):
        return True
    return None


def area_of(item: pytest.Item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1].removeprefix("test_") if item.module else "other"


def is_selected(name: str, focus: list[str], skip: list[str]) -> bool:
    """Ginkgo's rule: any focus regex must match (if given) and no skip regex may."""
    if focus and not any(re.search(pattern, name) for pattern in focus):
        return False
    return not any(re.search(pattern, name) for pattern in skip)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    focus, skip = config.getoption("critest_focus"), config.getoption("critest_skip")
    for item in items:
        name = spec_name(item)
        if name is None:
            continue
        item.user_properties.extend([(SPEC_PROPERTY, name), (AREA_PROPERTY, area_of(item))])
        if not is_selected(name, focus, skip):
            item.add_marker(pytest.mark.skip(reason=c.FILTERED_OUT))


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def critest_context(pytestconfig: pytest.Config) -> TestContext:
    option = pytestconfig.getoption
    runtime_endpoint = option("runtime_endpoint")
    if not runtime_endpoint:
        raise pytest.UsageError("critest needs --runtime-endpoint")
    return TestContext(
        runtime_endpoint=runtime_endpoint,
        image_endpoint=option("image_endpoint") or runtime_endpoint,
        runtime_timeout=parse_duration(option("runtime_service_timeout")),
        image_timeout=parse_duration(option("image_service_timeout")),
        runtime_handler=option("runtime_handler"),
        registry_prefix=option("registry_prefix"),
        images=load_test_images(option("test_images_file")),
        websocket_exec=option("websocket_exec"),
        websocket_attach=option("websocket_attach"),
        websocket_portforward=option("websocket_portforward"),
        nri_socket=option("nri_socket"),
        handler_skips=not option("no_handler_skips"),
    )


@pytest.fixture(scope="session")
def call_log(pytestconfig: pytest.Config) -> CallLog:
    return pytestconfig.stash[CALL_LOG_KEY]


@pytest.fixture(scope="session")
def runtime_client(critest_context: TestContext, call_log: CallLog) -> Iterator[RuntimeClient]:
    client = RuntimeClient.connect(critest_context.runtime_endpoint, critest_context.runtime_timeout, call_log)
    yield client
    client.close()


@pytest.fixture(scope="session")
def image_client(critest_context: TestContext, call_log: CallLog) -> Iterator[ImageClient]:
    client = ImageClient.connect(critest_context.image_endpoint, critest_context.image_timeout, call_log)
    yield client
    client.close()


@pytest.fixture(scope="session")
def runtime_version(runtime_client: RuntimeClient) -> pb.VersionResponse:
    return runtime_client.version(pb.VersionRequest(version="0.1.0"))


@pytest.fixture(scope="session")
def cgroup_parent(runtime_client: RuntimeClient) -> str:
    return detect_cgroup_parent(runtime_client)


@pytest.fixture(autouse=True)
def _fresh_call_log(call_log: CallLog) -> None:
    call_log.reset()


@pytest.fixture
def cri(runtime_client: RuntimeClient, image_client: ImageClient,
        critest_context: TestContext, runtime_version: pb.VersionResponse, cgroup_parent: str) -> Iterator[Cri]:
    """The spec's handle; everything it created is removed afterwards, pass or fail.

    What cannot be removed is a leak: the spec errors at teardown, naming what it left behind.
    """
    handle = Cri(runtime_client, image_client, critest_context, runtime_version, cgroup_parent=cgroup_parent)
    yield handle
    problems = handle.cleanup.run()
    if problems:
        raise CleanupFailed(problems)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        calls = item.config.stash[CALL_LOG_KEY].render()
        report.sections.append(("CRI calls", calls or "(no CRI calls)"))
    if call.when == "teardown" and call.excinfo is not None and isinstance(call.excinfo.value, CleanupFailed):
        # A plain string travels with the report from an xdist worker to the collector. A new list: the report
        # shares the item's.
        report.user_properties = [*report.user_properties, (LEFT_BEHIND_PROPERTY, str(call.excinfo.value))]
    return report
