"""``crictl logs``: a container's log, read from the file the runtime writes, as upstream does.

The CRI log format is one entry per line: ``<RFC3339Nano> <stdout|stderr> <P|F> <text>``, where P
marks a partial line continued by the next entry. Docker's JSON-file format (``{"log": ...,
"stream": ..., "time": ...}``) is read too. Entries go to this process's stdout or stderr, as the
container wrote them. With ``--follow`` the file is watched until the container stops, also across a
rotation; ``--reopen`` first asks the runtime to start a new file after a rotation.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import click

from cri_api import pb
from cri_api.config import parse_duration
from crictl.commands.container import resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError
from crictl.options import show_help_and_exit

FOLLOW_POLL_SECONDS = 0.2
STREAMS = ("stdout", "stderr")
_FRACTION = re.compile(r"\.(\d+)")
UNIX_TIME = re.compile(r"\d+(\.\d+)?")


@dataclass(frozen=True)
class LogEntry:
    timestamp: dt.datetime
    stream: str
    text: bytes  # a whole line, newline included (partial entries are joined)


def parse_time(text: str) -> dt.datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    text = _FRACTION.sub(lambda match: "." + match[1][:6].ljust(6, "0"), text, count=1)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_line(line: bytes) -> tuple[dt.datetime, str, bool, bytes] | None:
    """(time, stream, is_partial, text) of one CRI or JSON-file line; None for a line that is neither."""
    if line.startswith(b"{"):
        try:
            record = json.loads(line)
            text = record["log"].encode()
            return parse_time(record["time"]), record["stream"], not text.endswith(b"\n"), text.rstrip(b"\n")
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"P", b"F"):
        return None
    try:
        timestamp = parse_time(parts[0].decode())
    except ValueError:
        return None
    return timestamp, parts[1].decode(), parts[2] == b"P", parts[3] if len(parts) == 4 else b""


def entries(lines: Iterable[bytes]) -> Iterator[LogEntry]:
    """Whole log lines, partial pieces joined per stream; unreadable lines are skipped."""
    pending: dict[str, list[bytes]] = {}
    for line in lines:
        parsed = parse_line(line)
        if parsed is None:
            continue
        timestamp, stream, partial, text = parsed
        pending.setdefault(stream, []).append(text)
        if not partial:
            yield LogEntry(timestamp, stream, b"".join(pending.pop(stream)) + b"\n")


@dataclass(frozen=True)
class LogOptions:
    tail: int
    since: dt.datetime | None
    timestamps: bool
    limit_bytes: int
    stream: str


def wanted(entry: LogEntry, options: LogOptions) -> bool:
    """Whether the entry passes ``--stream`` and ``--since``."""
    return ((not options.stream or entry.stream == options.stream)
            and (options.since is None or entry.timestamp >= options.since))


def selected(all_entries: Iterable[LogEntry], options: LogOptions) -> list[LogEntry]:
    """The last ``--tail`` entries (all with -1), then those ``--stream`` and ``--since`` keep, as upstream."""
    chosen = list(all_entries)
    if options.tail >= 0:
        chosen = chosen[len(chosen) - options.tail:] if options.tail else []
    return [entry for entry in chosen if wanted(entry, options)]


def render(entry: LogEntry, timestamps: bool) -> bytes:
    if not timestamps:
        return entry.text
    stamp = entry.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.encode() + b" " + entry.text


class Output:
    """Writes each entry where the container wrote it (this process's stdout or stderr), stopping at ``--limit-bytes``.

    The limit counts the bytes of both streams together.
    """

    def __init__(self, sinks: Mapping[str, BinaryIO], limit: int) -> None:
        self.sinks, self.left = sinks, limit

    @property
    def full(self) -> bool:
        return self.left == 0

    def write(self, stream: str, data: bytes) -> None:
        if self.left >= 0:
            data, self.left = data[: self.left], max(self.left - len(data), 0)
        sink = self.sinks[stream]
        sink.write(data)
        sink.flush()

    def entries(self, chosen: Iterable[LogEntry], timestamps: bool) -> None:
        for entry in chosen:
            if self.full:
                return
            self.write(entry.stream, render(entry, timestamps))


def parse_since(text: str) -> dt.datetime | None:
    """``--since`` as upstream reads it: a Go duration back from now, a time (local without a zone), or Unix seconds."""
    if not text:
        return None
    if text != "0":  # upstream reads a bare 0 as the Unix epoch, not as a zero duration
        with contextlib.suppress(ValueError):
            return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=parse_duration(text))
    with contextlib.suppress(ValueError):
        moment = parse_time(text)
        return moment if moment.tzinfo else moment.astimezone()
    if UNIX_TIME.fullmatch(text):
        return dt.datetime.fromtimestamp(float(text), dt.UTC)
    raise CrictlError(f'failed to parse value as time or duration: "{text}"')


def check_stream(ctx: click.Context, stream: str) -> None:
    """Upstream's checks of ``--stream``, before anything is asked of the runtime."""
    if stream not in ("", *STREAMS):
        raise CrictlError(f'invalid stream "{stream}", must be "stdout" or "stderr"')
    given = click.core.ParameterSource.COMMANDLINE
    if ctx.get_parameter_source("tail") == given and ctx.get_parameter_source("stream") == given:
        raise CrictlError("--tail and --stream are mutually exclusive")


def reopen_log(settings: Settings, container_id: str) -> None:
    """ReopenContainerLog: the runtime starts a new file at the log path (after the old one was rotated away)."""
    with doing("reopen container logs"):
        settings.runtime().reopen_container_log(pb.ReopenContainerLogRequest(container_id=container_id))
    click.echo("INFO Container logs reopened", err=True)


def log_path(settings: Settings, container_id: str, previous: bool) -> Path:
    """The log file of the container, or with ``previous`` of its attempt before this one."""
    with doing(f"getting the status of container {container_id!r}"):
        status = settings.runtime().container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    if not status.log_path:
        raise CrictlError("the container has not set log path")
    path = Path(status.log_path)
    if previous:  # kubelet names attempts <container>/<attempt>.log
        if status.metadata.attempt == 0:
            raise CrictlError(f"previous terminated container {status.metadata.name} not found")
        path = path.with_name(f"{status.metadata.attempt - 1}{path.suffix}")
    return path


def is_running(settings: Settings, container_id: str) -> bool:
    with doing(f"getting the status of container {container_id!r}"):
        status = settings.runtime().container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    return bool(status.state == pb.ContainerState.CONTAINER_RUNNING)


def replaced(path: Path, log_file: BinaryIO) -> BinaryIO | None:
    """The new file at ``path`` when the one being read was rotated away; None while it is still the same."""
    try:
        new_file = open(path, "rb")  # noqa: SIM115 (the caller keeps reading it)
    except FileNotFoundError:
        return None  # rotated, but the runtime has not started the new file yet
    if os.fstat(new_file.fileno()).st_ino == os.fstat(log_file.fileno()).st_ino:
        new_file.close()
        return None
    return new_file


def whole_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """The complete lines in ``data`` (newlines kept) and the unfinished rest."""
    *lines, rest = data.split(b"\n")
    return [line + b"\n" for line in lines], rest


def appended_lines(settings: Settings, container_id: str, path: Path, log_file: BinaryIO) -> Iterator[bytes]:
    """Whole lines written after the file's position, until the container stops; rotations are followed."""
    buffered = b""
    running = True
    try:
        while True:
            chunk = log_file.read()
            if chunk:
                lines, buffered = whole_lines(buffered + chunk)
                yield from lines
                continue
            if not running:
                return  # one more read after the container stopped, for what it wrote on its way out
            running = is_running(settings, container_id)
            new_file = replaced(path, log_file) if running else None
            if new_file is None:
                if running:
                    time.sleep(FOLLOW_POLL_SECONDS)
                continue
            lines, _ = whole_lines(buffered + log_file.read())  # written to the old file since the last read
            yield from lines
            log_file.close()
            log_file, buffered = new_file, b""
    finally:
        log_file.close()


@click.command("logs")
@click.argument("container_ids", nargs=-1, metavar="CONTAINER-ID")
@click.option("-f", "--follow", "follow_log", is_flag=True, help="Follow log output")
@click.option("-p", "--previous", is_flag=True,
              help="Print the logs for the previous instance of the container in a pod if it exists")
@click.option("-r", "--reopen", is_flag=True, help="Reopen the container logs for the provided container")
@click.option("--tail", default=-1, show_default=True,
              help="Number of lines to show from the end of the logs. Defaults to all")
@click.option("--limit-bytes", default=-1, show_default=True,
              help="Maximum bytes of logs to return. Defaults to no limit")
@click.option("--since", default="", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37) or relative "
              "(e.g. 42m for 42 minutes)")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("-s", "--stream", default="", help="Show specified stream (stdout or stderr). Defaults to both.")
@pass_settings
def logs_command(settings: Settings, container_ids: tuple[str, ...], follow_log: bool, previous: bool, reopen: bool,
                 tail: int, limit_bytes: int, since: str, timestamps: bool, stream: str) -> None:
    """Fetch the logs of a container."""
    ctx = click.get_current_context()
    if not container_ids or not container_ids[0]:
        raise CrictlError("ID cannot be empty")
    if len(container_ids) > 1:
        show_help_and_exit(ctx)
    check_stream(ctx, stream)
    options = LogOptions(tail, parse_since(since), timestamps, limit_bytes, stream)
    [container_id] = resolve_container_ids(settings.runtime(), container_ids)
    if reopen:
        reopen_log(settings, container_id)
    path = log_path(settings, container_id, previous)
    output = Output({"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}, limit_bytes)
    try:
        log_file = open(path, "rb")  # noqa: SIM115 (kept open while following)
    except OSError as exc:
        raise CrictlError(f'failed to open log file "{path}": {exc.strerror}') from None
    with log_file:
        data = log_file.read()
        complete = data[: data.rfind(b"\n") + 1]
        output.entries(selected(entries(complete.splitlines(keepends=True)), options), timestamps)
        if follow_log and not output.full:
            log_file.seek(len(complete))
            followed = entries(appended_lines(settings, container_id, path, log_file))
            output.entries((entry for entry in followed if wanted(entry, options)), timestamps)
