"""The ``reference-runtime`` daemon: serve the CRI on a unix socket until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from reference_runtime import __version__
from reference_runtime.config import LOG_LEVELS, ConfigError, DaemonConfig, load_config
from reference_runtime.daemon_log import setup_logging
from reference_runtime.oci.reaper import become_subreaper
from reference_runtime.server.grpc_server import create_server
from reference_runtime.server.service import CriService

log = logging.getLogger("reference_runtime")
SHUTDOWN_GRACE_SECONDS = 5.0


@click.command("reference-runtime", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="reference-runtime")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file "
              "(default: /etc/reference-runtime/config.toml if present)")
@click.option("-a", "--address", help="CRI socket path [default: /run/reference-runtime/reference-runtime.sock]")
@click.option("--root", help="directory for persistent state [default: /var/lib/reference-runtime]")
@click.option("--state", help="directory for volatile state [default: /run/reference-runtime]")
@click.option("-l", "--log-level", type=click.Choice(LOG_LEVELS), help="log level [default: info]")
@click.option("--registry-config-dir", help="directory of <registry host>/hosts.toml files (containerd format)")
@click.option("--cni-conf-dir", help="CNI network configs; the first one is the pod network [default: /etc/cni/net.d]")
@click.option("--cni-bin-dir", help="CNI plugin binaries, ':'-separated [default: /usr/lib/cni]")
@click.option("--pause-image", help="the pod sandbox image [default: registry.k8s.io/pause:3.10]")
@click.option("--stream-address", help="address of the exec/attach/port-forward server [default: 127.0.0.1]")
@click.option("--nri-socket", help="listen for NRI plugins on this socket [default: NRI disabled]")
def daemon_command(config_path: Path | None, address: str | None, root: str | None, state: str | None,
                   log_level: str | None, registry_config_dir: str | None, cni_conf_dir: str | None,
                   cni_bin_dir: str | None, pause_image: str | None, stream_address: str | None,
                   nri_socket: str | None) -> None:
    """A CRI runtime: pods on runc, images from OCI registries."""
    try:
        config = load_config(config_path).with_overrides(
            address=address, root=root, state=state, log_level=log_level,
            registry_config_dir=registry_config_dir, cni_conf_dir=cni_conf_dir, cni_bin_dir=cni_bin_dir,
            pause_image=pause_image, stream_address=stream_address, nri_socket=nri_socket)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging(config.log_level)
    serve(config)


def serve(config: DaemonConfig) -> None:
    """Run until SIGTERM or SIGINT, then stop taking calls and remove the socket."""
    stop = threading.Event()
    # Containers' monitors daemonize; as a subreaper we get (and reap) them, since PID 1 may not.
    become_subreaper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    for directory in (config.root, config.state):
        Path(directory).mkdir(parents=True, exist_ok=True, mode=0o711)
    svc = CriService(config)
    try:
        server = create_server(svc, config.socket_path)
    except (ConfigError, RuntimeError) as exc:
        raise click.ClickException(f"cannot serve on {config.socket_path}: {exc}") from None
    log.info("serving", extra={"address": str(config.socket_path), "version": __version__})
    try:
        svc.recover()
    except Exception as exc:
        log.exception("start-up recovery failed")
        server.stop(0).wait()
        config.socket_path.unlink(missing_ok=True)
        raise click.ClickException(f"start-up recovery failed: {exc}") from None
    try:
        svc.nri.start()  # after recovery: a joining plugin is synchronized with every pod and container
    except OSError as exc:
        server.stop(0).wait()
        config.socket_path.unlink(missing_ok=True)
        raise click.ClickException(f"cannot listen for NRI plugins on {config.nri_socket}: {exc}") from None
    log.info("ready", extra={"images": len(svc.images.store.list())})
    stop.wait()
    log.info("shutting down")
    svc.stopping.set()
    svc.nri.stop()
    svc.streaming.stop()
    server.stop(SHUTDOWN_GRACE_SECONDS).wait()
    config.socket_path.unlink(missing_ok=True)


def main() -> None:
    daemon_command(prog_name="reference-runtime")


if __name__ == "__main__":
    main()
