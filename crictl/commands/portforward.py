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


@click.command("port-forward", )
@streaming_options
@click.argument("pod_id", metavar="POD-ID")
@click.argument("ports", nargs=-1, required=True, metavar="[LOCAL_PORT:]REMOTE_PORT...")
@pass_settings
def port_forward_command(settings: Settings, transport: str, tls_ca: str | None, tls_cert: str | None,
                         tls_key: str | None, tls_server_name: str, pod_id: str, ports: tuple[str, ...]) -> None:
    """Forward local port to a pod."""
    pairs = parse_ports(ports)
    runtime = settings.runtime()
    [pod_id] = resolve_pod_ids(runtime, [pod_id])
    request = pb.PortForwardRequest(pod_sandbox_id=pod_id, port=[remote for _, remote in pairs])
    with doing(f"getting the port-forward URL of pod {pod_id}"):
        url = runtime.port_forward(request).url
    from cri_api.streaming.client import port_forward
    from cri_api.streaming.upgrade import StreamingError

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with port_forward(url, pairs, transport=transport, tls=tls_settings(tls_ca, tls_cert, tls_key,
                                                                          tls_server_name)) as forwarder:
            for (_, remote), local in zip(pairs, forwarder.local_ports, strict=True):
                click.echo(f"Forwarding from 127.0.0.1:{local} -> {remote}")
            while not stop.wait(0.5):
                pass
    except KeyboardInterrupt:
        pass
    except (StreamingError, OSError) as exc:
        raise CrictlError(f"forwarding ports of pod {pod_id}: {exc}") from None
