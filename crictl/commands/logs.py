"""``crictl logs``: a container's log, read from the file the runtime writes, as upstream does.

The CRI log format is one entry per line: ``<RFC3339Nano> <stdout|stderr> <P|F> <text>``, where P
marks a partial line continued by the next entry. Docker's JSON-file format (``{"log": ...,
"stream": ..., "time": ...}``) is read too. With ``--follow`` the file is watched until the
container stops.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

import click

from cri_api import pb
from cri_api.config import parse_duration
from crictl.commands.container import resolve_container_ids
from crictl.context import Settings, doing, pass_settings
from crictl.errors import CrictlError

FOLLOW_POLL_SECONDS = 0.2
STREAMS = ("stdout", "stderr")
_FRACTION = re.compile(r"\.(\d+)")


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
    reverse: bool


def selected(all_entries: Iterable[LogEntry], options: LogOptions) -> list[LogEntry]:
    chosen = [entry for entry in all_entries
              if (not options.stream or entry.stream == options.stream)
              and (options.since is None or entry.timestamp >= options.since)]
    if options.tail >= 0:
        chosen = chosen[len(chosen) - options.tail:] if options.tail else []
    return list(reversed(chosen)) if options.reverse else chosen


def render(entry: LogEntry, timestamps: bool) -> bytes:
    if not timestamps:
        return entry.text
    stamp = entry.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return stamp.encode() + b" " + entry.text


class Output:
    """Writes rendered entries, stopping at ``--limit-bytes``."""

    def __init__(self, sink: BinaryIO, limit: int) -> None:
        self.sink, self.left = sink, limit

    @property
    def full(self) -> bool:
        return self.left == 0

    def write(self, data: bytes) -> None:
        if self.left >= 0:
            data, self.left = data[: self.left], max(self.left - len(data), 0)
        self.sink.write(data)
        self.sink.flush()


def parse_since(text: str) -> dt.datetime | None:
    """An RFC 3339 time, or a relative duration such as 10s or 5m (as upstream's --since)."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        pass
    try:
        return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=parse_duration(text))
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither an RFC 3339 time nor a duration", param_hint="--since") from None


def log_path(settings: Settings, container_id: str, previous: bool) -> tuple[Path, pb.ContainerStatus]:
    [container_id] = resolve_container_ids(settings.runtime(), [container_id])
    with doing(f"getting the status of container {container_id!r}"):
        status = settings.runtime().container_status(pb.ContainerStatusRequest(container_id=container_id)).status
    if not status.log_path:
        raise CrictlError(f"container {container_id} has no log file (its config sets no log_path)")
    path = Path(status.log_path)
    if previous:  # kubelet names attempts <container>/<attempt>.log
        path = path.with_name(f"{status.metadata.attempt - 1}.log")
    return path, status


def follow(settings: Settings, container_id: str, stream: BinaryIO, output: Output, options: LogOptions) -> None:
    """Print entries as they are appended (``--tail`` applied to what was there before), until the container stops."""
    buffered = b""
    while not output.full:
        chunk = stream.read()
        if chunk:
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for entry in selected(entries(line + b"\n" for line in lines), options):
                output.write(render(entry, options.timestamps))
            continue
        status = settings.runtime().container_status(pb.ContainerStatusRequest(container_id=container_id)).status
        if status.state != pb.ContainerState.CONTAINER_RUNNING:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


@click.command("logs", )
@click.argument("container_id", metavar="CONTAINER-ID")
@click.option("-f", "--follow", "follow_log", is_flag=True, help="Follow log output")
@click.option("-p", "--previous", is_flag=True, help="Print the logs for the previous instance of the container")
@click.option("--since", default="", help="Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative "
              "(e.g. 42m for 42 minutes)")
@click.option("--tail", default=-1, show_default=True, help="Number of lines to show from the end of the logs")
@click.option("-t", "--timestamps", is_flag=True, help="Show timestamps")
@click.option("--limit-bytes", default=-1, show_default=True, help="Maximum bytes of logs to return")
@click.option("-r", "--reverse", is_flag=True, help="Reverse log output")
@click.option("--stream", default="", type=click.Choice(["", *STREAMS]),
              help="Only display logs from a single stream (stdout or stderr)")
@pass_settings
def logs_command(settings: Settings, container_id: str, follow_log: bool, previous: bool, since: str, tail: int,
                 timestamps: bool, limit_bytes: int, reverse: bool, stream: str) -> None:
    """Fetch the logs of a container."""
    if reverse and follow_log:
        raise click.UsageError("--reverse and --follow cannot be used together")
    options = LogOptions(tail, parse_since(since), timestamps, limit_bytes, stream, reverse)
    path, _ = log_path(settings, container_id, previous)
    output = Output(sys.stdout.buffer, limit_bytes)
    try:
        log_file = open(path, "rb")  # noqa: SIM115 (kept open while following)
    except OSError as exc:
        raise CrictlError(f"reading the log of container {container_id}: {path}: {exc.strerror}") from None
    with log_file:
        data = log_file.read()
        complete = data[: data.rfind(b"\n") + 1]
        for entry in selected(entries(complete.splitlines(keepends=True)), options):
            if output.full:
                return
            output.write(render(entry, timestamps))
        if follow_log:
            log_file.seek(len(complete))
            follow(settings, container_id, log_file, output, replace(options, tail=-1, reverse=False))
