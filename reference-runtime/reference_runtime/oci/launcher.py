"""Launchers: a command put in front of an OCI runtime's every call (conmon's ``create`` included) to give the
runtime the environment it needs on this host. Each is ``/bin/sh -c SCRIPT NAME RUNTIME ARGS...`` (possibly behind
``unshare``); the script ends in ``exec "$@"``, so the runtime keeps the launcher's pid.

- hiding the unified cgroup hierarchy (crun on a hybrid cgroup host). crun refuses a host whose cgroup v2
  hierarchy at /sys/fs/cgroup/unified has controllers enabled ("cgroups in hybrid mode not supported", checked
  for every cgroup manager, ``disabled`` included). Run in a mount namespace of its own without that mount, crun
  sees a cgroup v1 host and places the container in every v1 controller's hierarchy (where limits and our stats
  are). Only the controllers that exist in v2 alone (hugetlb on such a host) are out of its reach, as they are
  for runc here, which drives the v1 hierarchies too. Mount propagation is left as it is, so shared and slave
  volumes still propagate; only /sys/fs/cgroup is made private first, so that the unmount stays in the namespace.
- private stdio (runsc). runsc changes the owner of the files behind its stdin, stdout and stderr to the sandbox
  user, and conmon (without ``-i``) or a caller without input gives it the host's /dev/null. A stdin that is
  /dev/null becomes an empty here-document (a pipe, or an unlinked temporary file, that reads as EOF just like
  /dev/null); a stdout or stderr that is /dev/null is pointed at the other one, and if both are, the runtime is
  not run at all.
"""

from __future__ import annotations

from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNIFIED_MOUNT = CGROUP_ROOT / "unified"
UNSHARE = "/usr/bin/unshare"
SHELL = "/bin/sh"

HIDE_UNIFIED_CGROUP_SCRIPT = (
    f'mount --make-rprivate {CGROUP_ROOT} && umount {UNIFIED_MOUNT} && exec "$@"'
)
PRIVATE_STDIO_SCRIPT = """\
if [ /dev/stdin -ef /dev/null ]; then exec 0<<EOF
EOF
fi
if [ /dev/stdout -ef /dev/null ] && [ /dev/stderr -ef /dev/null ]; then
  echo "refusing to run $1 with /dev/null as stdout and stderr: it would change the owner of /dev/null" >&2
  exit 125
fi
if [ /dev/stdout -ef /dev/null ]; then exec 1>&2; fi
if [ /dev/stderr -ef /dev/null ]; then exec 2>&1; fi
exec "$@"
"""


def hide_unified_cgroup() -> tuple[str, ...]:
    """The launcher that runs the runtime without the unified cgroup hierarchy in sight."""
    return (UNSHARE, "--mount", "--propagation", "unchanged",
            SHELL, "-c", HIDE_UNIFIED_CGROUP_SCRIPT, "hide-unified-cgroup")


def private_stdio() -> tuple[str, ...]:
    """The launcher that never lets the runtime see the host's /dev/null on its stdio."""
    return (SHELL, "-c", PRIVATE_STDIO_SCRIPT, "private-stdio")


def hybrid_cgroup_controllers(root: Path = CGROUP_ROOT, mounts: str | None = None) -> bool:
    """Whether this is a hybrid cgroup host (v1 hierarchies under a tmpfs, v2 mounted at ``unified``) whose v2
    hierarchy has controllers: the hosts crun refuses. ``mounts`` is /proc/self/mounts' text (read if None)."""
    types = _mount_types(Path("/proc/self/mounts").read_text() if mounts is None else mounts)
    unified = root / "unified"
    if types.get(str(root)) != "tmpfs" or types.get(str(unified)) != "cgroup2":
        return False
    try:
        return bool((unified / "cgroup.controllers").read_text().split())
    except OSError:
        return False


def _mount_types(mounts: str) -> dict[str, str]:
    """Mount point -> file system type; the last mount at a path is the one in sight."""
    types = {}
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            types[fields[1]] = fields[2]
    return types


def launcher_for(hide_unified: bool, private: bool) -> tuple[str, ...]:
    """The launcher a handler's settings ask for on this host (``()``: run the runtime directly)."""
    launcher: tuple[str, ...] = ()
    if hide_unified and hybrid_cgroup_controllers():
        launcher += hide_unified_cgroup()
    if private:
        launcher += private_stdio()
    return launcher
