"""``crictl port-forward``: local ports on 127.0.0.1 forwarded to ports of a pod, until interrupted."""

from __future__ import annotations

import signal
import threading

import click

from cri_api import pb
from crictl.commands.exec import streaming_options, tls_settings
from crictl.commands.sandbox import resolve_pod_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError
from crictl.options import show_help_and_exit


def print_connection(local_port: int) -> None:
    click.echo(f"Handling connection for {local_port}")


def print_error(error: str) -> None:
    # client-go's wording: upstream logs it with klog, this crictl in the form of its other non-fatal errors.
    click.echo(f"ERRO an error occurred forwarding {error}", err=True)


def parse_ports(specs: tuple[str, ...]) -> list[tuple[int, int]]:
    """``[LOCAL:]REMOTE`` pairs; LOCAL 0 (or ``:REMOTE``) picks a free local port, as upstream."""
    pairs = []
    for spec in specs:
        local, _, remote = spec.rpartition(":") if ":" in spec else (spec, "", spec)
        try:
            pair = (int(local or 0), int(remote))
        except ValueError:
            raise click.BadParameter(f"{spec!r} is not [LOCAL:]REMOTE", param_hint="PORTS") from None
        if not (0 <= pair[0] <= 65535 and 0 < pair[1] <= 65535):
            raise click.BadParameter(f"{spec!r}: ports are 1 to 65535", param_hint="PORTS")
        pairs.append(pair)
    return pairs


@click.command("port-forward")
@streaming_options
@click.argument("args", nargs=-1, metavar="POD-ID [LOCAL_PORT:]REMOTE_PORT")
@pass_settings
def port_forward_command(settings: Settings, transport: str, tls_sni: str, tls_ca: str | None, tls_cert: str | None,
                         tls_key: str | None, args: tuple[str, ...]) -> None:
    """Forward local port to a pod."""
    if len(args) < 2:
        show_help_and_exit(click.get_current_context())
    pod_id, pairs = args[0], parse_ports(args[1:])
    tls = tls_settings(tls_ca, tls_cert, tls_key, tls_sni)
    runtime = settings.runtime()
    [pod_id] = resolve_pod_ids(runtime, [pod_id])
    # As upstream, only the pod goes in the request: the ports travel on the stream.
    with doing(f"getting the port-forward URL of pod {pod_id}"):
        url = runtime.port_forward(pb.PortForwardRequest(pod_sandbox_id=pod_id)).url
    from cri_api.streaming.client import port_forward
    from cri_api.streaming.upgrade import StreamingError

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with port_forward(url, pairs, transport=transport, tls=tls, on_connection=print_connection,
                          on_error=print_error) as forwarder:
            for (_, remote), local in zip(pairs, forwarder.local_ports, strict=True):
                click.echo(f"Forwarding from 127.0.0.1:{local} -> {remote}")
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    except (StreamingError, OSError) as exc:
        raise CrictlError(f"forwarding ports of pod {pod_id}: {exc}") from None
