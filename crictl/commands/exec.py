"""``crictl exec`` and ``crictl attach``: a command in a running container, or its own stdio, on this terminal.

Both ask the runtime for a streaming URL and run the session with ``cri_api.streaming`` over SPDY
(the default, as upstream) or WebSocket (``--transport websocket``). With ``-t`` the local
terminal is put in raw mode for the session and its size follows window changes (SIGWINCH).
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import click

from cri_api import pb
from crictl.commands.container import resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError

TRANSPORTS = ("spdy", "websocket")


def streaming_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The flags upstream's exec, attach and port-forward share: transport and TLS for the streaming URL."""
    options = [
        click.option("-x", "--transport", default="spdy", show_default=True, type=click.Choice(TRANSPORTS),
                     help="Transport protocol to use"),
        click.option("--tls-ca", "tls_ca", metavar="FILE", help="Path to the streaming TLS CA file"),
        click.option("--tls-cert", "tls_cert", metavar="FILE", help="Path to the streaming TLS certificate file"),
        click.option("--tls-key", "tls_key", metavar="FILE", help="Path to the streaming TLS key file"),
        click.option("--tls-server-name", "tls_server_name", default="localhost", show_default=True,
                     help="The server name used for the streaming TLS connection"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def tls_settings(ca: str | None, cert: str | None, key: str | None, server_name: str) -> Any:
    from cri_api.streaming.upgrade import TLSSettings

    return TLSSettings(ca_file=ca, cert_file=cert, key_file=key, server_name=server_name)


@contextlib.contextmanager
def terminal_session(tty: bool) -> Iterator[queue.Queue[tuple[int, int] | None] | None]:
    """With ``tty`` and a real terminal: raw mode, and a queue of window sizes (ends with None) for the session."""
    if not tty or not sys.stdin.isatty():
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


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-i", "--interactive", is_flag=True, help="Keep STDIN open")
@click.option("-t", "--tty", is_flag=True, help="Allocate a pseudo-TTY")
@click.option("-s", "--sync", is_flag=True, help="Run the command synchronously (ExecSync)")
@click.option("--timeout", default=0, show_default=True, help="Timeout in seconds, with --sync")
@streaming_options
@click.argument("container_id", metavar="CONTAINER-ID")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_settings
def exec_command(settings: Settings, interactive: bool, tty: bool, sync: bool, timeout: int, transport: str,
                 tls_ca: str | None, tls_cert: str | None, tls_key: str | None, tls_server_name: str,
                 container_id: str, command: tuple[str, ...]) -> None:
    """Run a command in a running container."""
    runtime = settings.runtime()
    [container_id] = resolve_container_ids(runtime, [container_id])
    if sync:
        with doing(f"running the command in container {container_id}"):
            result = runtime.exec_sync(pb.ExecSyncRequest(container_id=container_id, cmd=list(command),
                                                          timeout=timeout))
        sys.stdout.buffer.write(result.stdout)
        sys.stderr.buffer.write(result.stderr)
        sys.exit(result.exit_code)
    request = pb.ExecRequest(container_id=container_id, cmd=list(command), tty=tty, stdin=interactive,
                             stdout=True, stderr=not tty)
    with doing(f"getting the exec URL of container {container_id}"):
        url = runtime.exec(request).url
    from cri_api.streaming.client import exec_stream
    from cri_api.streaming.protocol import RemoteCommandError
    from cri_api.streaming.upgrade import StreamingError

    tls = tls_settings(tls_ca, tls_cert, tls_key, tls_server_name)
    with terminal_session(tty) as sizes:
        try:
            code = exec_stream(url, _stdin_source(interactive), sys.stdout.buffer, None if tty else sys.stderr.buffer,
                               tty=tty, resize=sizes, transport=transport, tls=tls)
        except (StreamingError, RemoteCommandError, OSError) as exc:
            raise CrictlError(f"running the command in container {container_id}: {exc}") from None
    sys.exit(code)


@click.command("attach", )
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Keep STDIN open")
@click.option("-t", "--tty", is_flag=True, help="Stdin is a TTY")
@streaming_options
@click.argument("container_id", metavar="CONTAINER-ID")
@pass_settings
def attach_command(settings: Settings, interactive: bool, tty: bool, transport: str, tls_ca: str | None,
                   tls_cert: str | None, tls_key: str | None, tls_server_name: str, container_id: str) -> None:
    """Attach to a running container."""
    runtime = settings.runtime()
    [container_id] = resolve_container_ids(runtime, [container_id])
    request = pb.AttachRequest(container_id=container_id, stdin=interactive, tty=tty, stdout=True, stderr=not tty)
    with doing(f"getting the attach URL of container {container_id}"):
        url = runtime.attach(request).url
    from cri_api.streaming.client import attach_stream
    from cri_api.streaming.protocol import RemoteCommandError
    from cri_api.streaming.upgrade import StreamingError

    tls = tls_settings(tls_ca, tls_cert, tls_key, tls_server_name)
    with terminal_session(tty) as sizes:
        try:
            attach_stream(url, _stdin_source(interactive), sys.stdout.buffer, None if tty else sys.stderr.buffer,
                          tty=tty, resize=sizes, transport=transport, tls=tls)
        except (StreamingError, RemoteCommandError, OSError) as exc:
            raise CrictlError(f"attaching to container {container_id}: {exc}") from None
