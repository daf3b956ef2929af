"""``crictl exec`` and ``crictl attach``: a command in a running container, or its own stdio, on this terminal.

Both ask the runtime for a streaming URL and run the session with ``cri_api.streaming`` over SPDY
(the default, as upstream) or WebSocket (``-r websocket``). With ``-t`` the local terminal is put in
raw mode for the session and its size follows window changes (SIGWINCH).

``exec`` takes upstream's container filters (``--name``, ``-p``, ``--image``, ``--state``,
``--label``, ``-l``, ``-n``) in place of the CONTAINER-ID and then runs the command in every match.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import click

from cri_api import pb
from cri_api.streaming.protocol import TRANSPORTS
from crictl.commands.container import ContainerFilter, list_containers, resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError, aggregate
from crictl.lookup import parse_labels
from crictl.options import option_group, show_help_and_exit

FILTER_PARAMETERS = ("name", "pod", "image", "state", "label", "latest", "last")
IGNORE_ERRORS_WARNING = "The `--ignore-errors` option has been set all errors returned by the command will be ignored."

# A container's ID and what its run ended with: the command's exit code, or why it could not run.
Outcome = tuple[str, int | CrictlError]


# The flags upstream's exec, attach and port-forward share: transport and TLS for the streaming URL.
streaming_options = option_group(
    click.option("-r", "--transport", default="spdy", show_default=True, type=click.Choice(TRANSPORTS),
                 help="Transport protocol to use, one of: spdy|websocket"),
    click.option("--tls-sni", "--tls-server-name", "tls_sni", default="localhost", show_default=True,
                 help="Server name used in the TLS client to check server certificates against"),
    click.option("--tls-ca", "tls_ca", help="Path to the streaming TLS CA certificate"),
    click.option("--tls-cert", "tls_cert", help="Path to the streaming TLS certificate"),
    click.option("--tls-key", "tls_key", help="Path to the streaming TLS key"),
)


def tls_settings(ca: str | None, cert: str | None, key: str | None, server_name: str) -> Any:
    """The TLS settings for the streaming URL; as upstream, any TLS flag needs both a certificate and its key."""
    from cri_api.streaming.upgrade import TLSSettings

    if (ca or cert or key) and not (cert and key):
        raise CrictlError("get TLS config from flags: both flags --tls-cert and --tls-key are required for "
                          "TLS streaming, only --tls-ca is optional")
    return TLSSettings(ca_file=ca or None, cert_file=cert or None, key_file=key or None, server_name=server_name)


def check_terminal(tty: bool, interactive: bool) -> None:
    """Upstream's two TTY rules, checked as upstream once the runtime has answered with the URL, before streaming:
    a TTY needs stdin, and stdin must then be a terminal."""
    if not tty:
        return
    if not interactive:
        raise CrictlError("tty=true must be specified with interactive=true")
    if not sys.stdin.isatty():
        raise CrictlError("input is not a terminal")


@contextlib.contextmanager
def terminal_session(tty: bool) -> Iterator[queue.Queue[tuple[int, int] | None] | None]:
    """With ``tty`` (stdin is then a terminal: see check_terminal): raw mode, and a queue of window sizes (ends
    with None) for the session."""
    if not tty:
        yield None
        return
    import termios
    import tty as terminal

    sizes: queue.Queue[tuple[int, int] | None] = queue.Queue()

    def push_size(*_: object) -> None:
        # The terminal's own size: shutil's would prefer $COLUMNS/$LINES, which need not be current.
        size = os.get_terminal_size(sys.stdin.fileno())
        sizes.put((size.columns, size.lines))

    saved = termios.tcgetattr(sys.stdin.fileno())
    previous = signal.signal(signal.SIGWINCH, push_size)
    terminal.setraw(sys.stdin.fileno())
    push_size()
    try:
        yield sizes
    finally:
        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)
        sizes.put(None)


def _stdin_source(interactive: bool) -> BinaryIO | None:
    # Unbuffered, so a raw terminal's keystrokes go out as typed.
    return os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0) if interactive else None


@dataclass(frozen=True)
class ExecOptions:
    """How to run the command in each selected container."""

    command: list[str]
    sync: bool
    timeout: int
    tty: bool
    interactive: bool
    transport: str
    tls: Any


def exec_sync(settings: Settings, options: ExecOptions, container_id: str) -> int:
    """ExecSync: the command's output once it has finished, and its exit code."""
    request = pb.ExecSyncRequest(container_id=container_id, cmd=options.command, timeout=options.timeout)
    # As upstream: no deadline without an exec timeout, else the runtime gets the client timeout on top of it.
    deadline = settings.timeout + options.timeout if options.timeout else 0
    with doing(f"running the command in container {container_id}"):
        result = settings.runtime().exec_sync(request, timeout=deadline)
    sys.stdout.buffer.write(result.stdout)
    sys.stdout.buffer.flush()
    sys.stderr.buffer.write(result.stderr)
    sys.stderr.buffer.flush()
    return int(result.exit_code)


def exec_streaming(settings: Settings, options: ExecOptions, container_id: str) -> int:
    """Exec and a streaming session on this process's stdio; the command's exit code."""
    request = pb.ExecRequest(container_id=container_id, cmd=options.command, tty=options.tty,
                             stdin=options.interactive, stdout=True, stderr=not options.tty)
    with doing(f"getting the exec URL of container {container_id}"):
        url = settings.runtime().exec(request).url
    try:
        check_terminal(options.tty, options.interactive)
    except CrictlError as exc:
        raise CrictlError(f"running the command in container {container_id}: {exc}") from None
    from cri_api.streaming.client import exec_stream
    from cri_api.streaming.protocol import RemoteCommandError
    from cri_api.streaming.upgrade import StreamingError

    with terminal_session(options.tty) as sizes:
        try:
            return exec_stream(url, _stdin_source(options.interactive), sys.stdout.buffer,
                               None if options.tty else sys.stderr.buffer, tty=options.tty, resize=sizes,
                               transport=options.transport, tls=options.tls)
        except (StreamingError, RemoteCommandError, OSError) as exc:
            raise CrictlError(f"running the command in container {container_id}: {exc}") from None


def run_in(settings: Settings, options: ExecOptions, container_id: str) -> int | CrictlError:
    """Run the command in one container; a failure to run it is returned, not raised."""
    try:
        return (exec_sync if options.sync else exec_streaming)(settings, options, container_id)
    except CrictlError as exc:
        return exc


def run_one_by_one(ids: Sequence[str], run: Callable[[str], int | CrictlError], headers: bool) -> list[Outcome]:
    """Each container in turn, its output after an ``<ID>:`` line with ``headers``."""
    outcomes: list[Outcome] = []
    for container_id in ids:
        if headers:
            click.echo(f"{container_id}:")
        outcomes.append((container_id, run(container_id)))
    return outcomes


def run_in_parallel(ids: Sequence[str], run: Callable[[str], int | CrictlError]) -> list[Outcome]:
    """Every container at once; their output mixes, so there are no headers (as upstream with -x)."""
    results: dict[str, int | CrictlError] = {}

    def run_and_keep(container_id: str) -> None:
        results[container_id] = run(container_id)

    # Daemon threads, so that Ctrl-C ends crictl without waiting for the commands.
    threads = [threading.Thread(target=run_and_keep, args=(container_id,), daemon=True) for container_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lost = CrictlError("running the command: the session ended unexpectedly")
    return [(container_id, results.get(container_id, lost)) for container_id in ids]


def exit_code(outcomes: Sequence[Outcome], ignore_errors: bool) -> int:
    """One container: its command's exit code (or its error). Several: every failure in one error."""
    if ignore_errors:
        return 0
    if len(outcomes) == 1:
        [(_, result)] = outcomes
        if isinstance(result, CrictlError):
            raise result
        return result
    failures = [result if isinstance(result, CrictlError)
                else CrictlError(f"running the command in container {container_id}: exit code {result}")
                for container_id, result in outcomes if result != 0]
    if failures:
        raise aggregate(failures)
    return 0


def filters_given(ctx: click.Context) -> bool:
    """Whether any filter flag was on the command line (even with its default value, as upstream's IsSet)."""
    return any(ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
               for name in FILTER_PARAMETERS)


def selected_ids(settings: Settings, ctx: click.Context) -> list[str]:
    """The IDs of the containers the filter flags select, newest first."""
    params = ctx.params
    container_filter = ContainerFilter(pod_id=params["pod"] or "", state=params["state"],
                                       labels=parse_labels(params["label"]), name=params["name"],
                                       image=params["image"], latest=params["latest"], last=params["last"] or 0)
    return [container.id for container in list_containers(settings, container_filter)]


def targets(settings: Settings, ctx: click.Context, args: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The container IDs and the command: from the filters, or from a leading CONTAINER-ID."""
    if filters_given(ctx):
        ids = selected_ids(settings, ctx)
        if not ids:
            click.echo("ERRO No containers found per filter flags", err=True)
            show_help_and_exit(ctx)
        return ids, list(args)
    if len(args) < 2:
        show_help_and_exit(ctx)
    return resolve_container_ids(settings.runtime(), [args[0]]), list(args[1:])


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-s", "--sync", is_flag=True, help="Run the command synchronously")
@click.option("--timeout", default=0, show_default=True, help="Timeout in seconds")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open")
@click.option("--name", help="Exec command for all containers matching this name filter regular expression pattern")
@click.option("-p", "--pod", help="Exec command for all containers matching this pod ID filter")
@click.option("--image", help="Exec command for all containers matching this container image filter")
@click.option("--state", help="Exec command for all containers matching this container state filter")
@click.option("--label", multiple=True, help="Exec command for all containers matching this key=value label filter")
@click.option("-l", "--latest", is_flag=True, help="Exec command for the most recently created container")
@click.option("-n", "--last", type=int, default=0, show_default=True,
              help="Exec command for all last n containers, set to 0 for unlimited")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the container ID if multiple containers are selected")
@click.option("-e", "--ignore-errors", is_flag=True, help="Ignore errors during command execution")
@click.option("-x", "--parallel", is_flag=True, help="Run the command in parallel if multiple containers are selected")
@streaming_options
@click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[CONTAINER-ID] COMMAND [ARG...]")
@pass_settings
def exec_command(settings: Settings, sync: bool, timeout: int, tty: bool, interactive: bool, quiet: bool,
                 ignore_errors: bool, parallel: bool, transport: str, tls_sni: str, tls_ca: str | None,
                 tls_cert: str | None, tls_key: str | None, args: tuple[str, ...], **_filters: Any) -> None:
    """Run a command in a running container.

    \b
    The CONTAINER-ID is only required if none of the following filter flags are set:
    --image, --label, --last, --latest, --name, --pod, --state
    """
    ctx = click.get_current_context()
    if not args:
        show_help_and_exit(ctx)
    if ignore_errors and not quiet:
        click.echo(f"WARN {IGNORE_ERRORS_WARNING}", err=True)
    headers = filters_given(ctx) and not quiet and not parallel
    ids, command = targets(settings, ctx, args)
    if len(ids) > 1 and (interactive or tty):
        raise CrictlError(f"-i and -t need a single container, but the filters select {len(ids)}")
    options = ExecOptions(command, sync, timeout, tty, interactive, transport,
                          tls_settings(tls_ca, tls_cert, tls_key, tls_sni))

    def run(container_id: str) -> int | CrictlError:
        return run_in(settings, options, container_id)

    # One container runs in this thread even with -x: a terminal session needs the main thread's signals.
    outcomes = run_in_parallel(ids, run) if parallel and len(ids) > 1 else run_one_by_one(ids, run, headers)
    sys.exit(exit_code(outcomes, ignore_errors))


@click.command("attach")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Keep STDIN open")
@streaming_options
@click.argument("container_id", metavar="CONTAINER-ID", required=False)
@pass_settings
def attach_command(settings: Settings, tty: bool, interactive: bool, transport: str, tls_sni: str,
                   tls_ca: str | None, tls_cert: str | None, tls_key: str | None, container_id: str | None) -> None:
    """Attach to a running container."""
    if not container_id:
        raise CrictlError("ID cannot be empty")
    tls = tls_settings(tls_ca, tls_cert, tls_key, tls_sni)
    runtime = settings.runtime()
    [container_id] = resolve_container_ids(runtime, [container_id])
    request = pb.AttachRequest(container_id=container_id, stdin=interactive, tty=tty, stdout=True, stderr=not tty)
    with doing(f"getting the attach URL of container {container_id}"):
        url = runtime.attach(request).url
    try:
        check_terminal(tty, interactive)
    except CrictlError as exc:
        raise CrictlError(f"attaching to container {container_id}: {exc}") from None
    from cri_api.streaming.client import attach_stream
    from cri_api.streaming.protocol import RemoteCommandError
    from cri_api.streaming.upgrade import StreamingError

    with terminal_session(tty) as sizes:
        try:
            attach_stream(url, _stdin_source(interactive), sys.stdout.buffer, None if tty else sys.stderr.buffer,
                          tty=tty, resize=sizes, transport=transport, tls=tls)
        except (StreamingError, RemoteCommandError, OSError) as exc:
            raise CrictlError(f"attaching to container {container_id}: {exc}") from None
