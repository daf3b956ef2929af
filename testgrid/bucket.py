"""A local directory standing for a GCS bucket, and the paths TestGrid's updater reads in it.

Layout (as Prow uploads it; the updater lists ``logs/<job>/`` and reads each build directory):
``<bucket>/logs/<job>/<build>/{started.json, finished.json, build-log.txt, artifacts/junit_*.xml}``
and ``<bucket>/logs/<job>/latest-build.txt``.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

from testgrid.errors import TestgridError

URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Prow's job names; the name is one path component of the bucket, so no separators or dot-only names.
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LATEST_BUILD_FILE = "latest-build.txt"
# Publishers racing for the next free build ID give up after this many taken IDs.
MAX_BUILD_ATTEMPTS = 1000


def local_bucket(location: str) -> Path:
    """The directory a bucket location names: a path or a ``file://`` URL; any other URL is refused."""
    if not location:
        raise TestgridError("the bucket location is empty: give a directory or a file:// URL")
    match = URL_SCHEME.match(location)
    if match is None:
        return Path(location)
    scheme = match.group(1).lower()
    if scheme == "gs":
        raise TestgridError(
            f"{location}: only local buckets (a directory or a file:// URL) are supported; publish into a "
            f"directory, then copy it to the bucket with `gsutil -m rsync -r DIR {location}`")
    if scheme != "file":
        raise TestgridError(f"{location}: unsupported bucket URL scheme {scheme}://; only local buckets "
                            "(a directory or a file:// URL) are supported")
    parts = urllib.parse.urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise TestgridError(f"{location}: a file:// URL must name a path on this machine (file:///PATH)")
    if not parts.path:
        raise TestgridError(f"{location}: the file:// URL has no path")
    return Path(urllib.parse.unquote(parts.path))


def job_name_problem(job: str) -> str | None:
    """Why ``job`` cannot name a job directory, or None when it can."""
    if JOB_NAME.match(job):
        return None
    return f"{job!r} is not a job name: use letters, digits, '.', '_' and '-', starting with a letter or digit"


def job_dir(bucket: Path, job: str) -> Path:
    return bucket / "logs" / job


def natural_key(name: str) -> list[int | str]:
    """Sort key ordering digit runs by value (``9`` before ``10``), as the updater sorts build names."""
    # re.split with a capturing group alternates text and digit runs, so positions never mix types.
    return [int(part) if index % 2 else part for index, part in enumerate(re.split(r"(\d+)", name))]


def list_builds(job_path: Path) -> list[str]:
    """The job's build directories, newest (naturally greatest) first."""
    names = [entry.name for entry in job_path.iterdir() if entry.is_dir() and not entry.name.startswith(".")]
    return sorted(names, key=natural_key, reverse=True)


def latest_numeric_build(job_path: Path) -> int | None:
    numbers = [int(name) for name in list_builds(job_path) if name.isdigit()] if job_path.is_dir() else []
    return max(numbers, default=None)


def create_build_dir(job_path: Path, wanted: int | None, started: int) -> tuple[str, Path]:
    """Create the directory of a new build whose ID is above every build already there; return its ID and path.

    Without ``wanted`` the ID is the start time in epoch seconds (as non-Prow publishers use), moved up
    past the latest build when that is later; ``mkdir`` is atomic, so two publishers never share an ID.
    """
    latest = latest_numeric_build(job_path)
    if wanted is not None:
        if latest is not None and wanted <= latest:
            raise TestgridError(f"build {wanted} is not after the latest build {latest} in {job_path}: "
                                "build IDs must increase")
        path = job_path / str(wanted)
        try:
            path.mkdir()
        except FileExistsError:
            raise TestgridError(f"build {wanted} already exists in {job_path}") from None
        return str(wanted), path
    candidate = max(started, latest + 1 if latest is not None else 0)
    for _ in range(MAX_BUILD_ATTEMPTS):
        path = job_path / str(candidate)
        try:
            path.mkdir()
        except FileExistsError:
            candidate += 1
            continue
        return str(candidate), path
    raise TestgridError(f"no free build ID in {job_path} after {MAX_BUILD_ATTEMPTS} attempts from {started}")


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` in one step, so a reader never sees half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def update_latest_build(job_path: Path, build: str) -> None:
    """Point ``latest-build.txt`` at ``build``, unless a later build is already there (a racing publisher)."""
    latest_file = job_path / LATEST_BUILD_FILE
    try:
        current = latest_file.read_text().strip()
    except FileNotFoundError:
        current = ""
    if current and natural_key(current) > natural_key(build):
        return
    write_atomically(latest_file, build.encode())
