"""The ``critest-testbed`` command: run the offline test bed (a registry and a CRI runtime) in the foreground."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from critest.images import ImagesError
from critest.testbed import host
from critest.testbed.bed import RUNTIMES, Testbed, write_critest_images_file
from critest.testbed.containerd import check_installed
from critest.testbed.containerd_config import MIRRORED_REGISTRIES
from critest.testbed.process import TestbedError
from critest.testbed.reference_runtime import ReferenceRuntimeTestbed
from critest.testbed.registry import REGISTRY_BINARY

PROG = "critest-testbed"
POLL_SECONDS = 0.5


class TestbedCLIError(click.ClickException):
    """A failure the user can act on: one line ``critest-testbed: <message>`` and exit 1."""

    __test__ = False  # not a pytest test class, despite its name

    def show(self, file: object = None) -> None:
        click.echo(f"{PROG}: {self.format_message()}", err=True)


@click.group(PROG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-D", "--debug", is_flag=True, help="Show the traceback of unexpected errors.")
@click.pass_context
def testbed_cli(ctx: click.Context, debug: bool) -> None:
    """An offline CRI test bed: our reference runtime or Debian's containerd, fed by a local image registry."""
    ctx.obj = debug


def bed_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options ``up`` and ``run`` share: where the bed lives and which port the registry takes."""
    options = [
        click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
                     help="Directory for the registry, containerd and their logs [default: a new temporary "
                          "directory, removed afterwards]."),
        click.option("--images-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Build cache of the image kit [default: the kit's cache]."),
        click.option("--registry-port", type=click.IntRange(1, 65535),
                     help="Port of the local registry on 127.0.0.1 [default: a free one]."),
        click.option("--runtime", type=click.Choice(list(RUNTIMES)), default="reference-runtime", show_default=True,
                     help="The CRI runtime to run: ours, or Debian's containerd."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@testbed_cli.command("up")
@bed_options
@click.pass_obj
def up_command(debug: bool, workdir: Path | None, images_dir: Path | None, registry_port: int | None,
               runtime: str) -> None:
    """Build and push the test images, start the registry and the runtime, and wait for Ctrl-C."""
    check_can_run(registry_port)
    with _signals_raise_interrupt(), _work_directory(workdir) as directory, _errors_as_one_line(debug):
        _run_until_interrupted(Testbed(directory, images_dir, registry_port, _report, runtime))


@testbed_cli.command("run", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@bed_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def run_command(debug: bool, workdir: Path | None, images_dir: Path | None, registry_port: int | None,
                runtime: str, command: tuple[str, ...]) -> None:
    """Start the test bed, run COMMAND against it, stop the bed; exit with COMMAND's status.

    COMMAND sees CONTAINER_RUNTIME_ENDPOINT and IMAGE_SERVICE_ENDPOINT (so crictl and critest
    find containerd without flags), CRITEST_TEST_IMAGES_FILE (a --test-images-file naming the
    kit's digest-pinned image) and, for the reference runtime, CRITEST_NRI_SOCKET (its NRI socket,
    for critest --nri-socket). Example:

        critest-testbed run -- sh -c 'critest --test-images-file "$CRITEST_TEST_IMAGES_FILE"'
    """
    check_can_run(registry_port)
    if shutil.which(command[0]) is None:
        raise TestbedCLIError(f"command not found: {command[0]}")
    with _signals_raise_interrupt(), _work_directory(workdir) as directory, _errors_as_one_line(debug):
        bed = Testbed(directory, images_dir, registry_port, _report_to_stderr, runtime)
        status = _run_command_on_bed(bed, directory, list(command))
    sys.exit(status)


@contextlib.contextmanager
def _errors_as_one_line(debug: bool) -> Iterator[None]:
    try:
        yield
    except (TestbedError, ImagesError) as exc:
        raise TestbedCLIError(str(exc)) from None
    except Exception as exc:
        if debug:
            raise
        raise TestbedCLIError(f"unexpected {type(exc).__name__}: {exc} (run with --debug for details)") from None


def check_can_run(registry_port: int | None) -> None:
    """Refuse early, with one line, what would fail later: not root, missing tools, a busy port."""
    if os.geteuid() != 0:
        raise TestbedCLIError("must run as root (containerd, runc and CNI need it)")
    try:
        check_installed()
    except TestbedError as exc:
        raise TestbedCLIError(str(exc)) from None
    if shutil.which(REGISTRY_BINARY) is None:
        raise TestbedCLIError(f"{REGISTRY_BINARY} is not installed (apt-get install docker-registry)")
    if registry_port is not None and not _port_is_free(registry_port):
        raise TestbedCLIError(f"port {registry_port} on 127.0.0.1 is busy; pick another --registry-port")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _report(line: str) -> None:
    click.echo(f"{PROG}: {line}")


def _report_to_stderr(line: str) -> None:
    click.echo(f"{PROG}: {line}", err=True)


def _run_until_interrupted(bed: Testbed) -> None:
    try:
        bed.start()
        click.echo(ready_message(bed))
        _wait_while_running(bed)
    except KeyboardInterrupt:
        click.echo(f"\n{PROG}: stopping and cleaning up")
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave pods or mounts behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for problem in bed.stop():
            click.echo(f"{PROG}: warning: not cleaned up: {problem}", err=True)


def _run_command_on_bed(bed: Testbed, workdir: Path, command: list[str]) -> int:
    try:
        bed.start()
        environment = {**os.environ, **command_environment(bed, workdir)}
        try:
            return subprocess.run(command, env=environment, check=False).returncode
        except KeyboardInterrupt:
            click.echo(f"\n{PROG}: interrupted; stopping and cleaning up", err=True)
            return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for problem in bed.stop():
            click.echo(f"{PROG}: warning: not cleaned up: {problem}", err=True)


def command_environment(bed: Testbed, workdir: Path) -> dict[str, str]:
    """What a command run on the bed needs to find it."""
    images_file = write_critest_images_file(bed.images, workdir / "test-images.yaml")
    environment = {"CONTAINER_RUNTIME_ENDPOINT": bed.endpoint, "IMAGE_SERVICE_ENDPOINT": bed.endpoint,
                   "CRITEST_TEST_IMAGES_FILE": str(images_file)}
    if isinstance(bed.runtime, ReferenceRuntimeTestbed) and bed.runtime.nri:
        environment["CRITEST_NRI_SOCKET"] = str(bed.runtime.nri_socket)
    return environment


def ready_message(bed: Testbed) -> str:
    """What to tell the user once everything answers: the endpoint and commands to paste."""
    assert bed.registry is not None and bed.runtime is not None
    endpoint = bed.runtime.endpoint
    endpoints = f"--runtime-endpoint {endpoint} --image-endpoint {endpoint}"
    timings = ", ".join(f"{step} {seconds:.1f}s" for step, seconds in bed.timings.items())
    return "\n".join([
        "",
        f"{bed.runtime_name} is ready ({timings}). Its CRI endpoint: {endpoint}",
        f"Pulls from {', '.join(MIRRORED_REGISTRIES)} are served by {bed.registry.address}.",
        "",
        f"  crictl {endpoints} images",
        f"  critest {endpoints}",
        "",
        f"Logs: {bed.runtime.log_path}. Press Ctrl-C to stop and clean up.",
    ])


def _wait_while_running(bed: Testbed) -> None:
    assert bed.registry is not None and bed.runtime is not None
    daemons = {bed.runtime_name: bed.runtime.proc, "the registry": bed.registry.proc}
    while True:
        for name, proc in daemons.items():
            if proc is None or proc.poll() is not None:
                raise TestbedError(f"{name} exited unexpectedly; see the logs in {bed.workdir}")
        time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def _signals_raise_interrupt() -> Iterator[None]:
    """Make SIGTERM stop the test bed the way Ctrl-C does, instead of killing it mid-flight."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _work_directory(requested: Path | None) -> Iterator[Path]:
    """The given directory (kept afterwards), or a temporary one removed when nothing is mounted in it."""
    if requested is not None:
        try:
            requested.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TestbedCLIError(f"cannot use --workdir {requested}: {exc.strerror}") from None
        yield requested.absolute()
        return
    directory = Path(tempfile.mkdtemp(prefix=f"{PROG}-"))
    try:
        yield directory
    finally:
        # Deleting through a mount that survived clean-up would delete what it shows: keep it then.
        if not host.mounts_under(directory):
            shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    testbed_cli(prog_name=PROG)
