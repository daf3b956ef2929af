"""What gVisor's runsc (Debian 12's, 20221219) cannot do, spec by spec: such specs skip with ``--runtime-handler
runsc``, saying why. Each was seen to fail for the reason given, with runsc on the ptrace platform and the host
network stack (``--network=host``, the reference runtime's built-in runsc handler)."""

from __future__ import annotations

from critest.framework import HandlerLimitation

RUNSC = "runsc"
REFERENCE_RUNTIME = "reference-runtime"

RUNSC_SHARED_PROPAGATION = HandlerLimitation(
    RUNSC, "gVisor takes only private or slave root mount propagation, so no mount propagates back to the host")
RUNSC_READONLY_SUBMOUNTS = HandlerLimitation(
    RUNSC, "gVisor serves a bind mount through its gofer as one file system, so host mounts below a read-only "
    "bind mount are read-only too")
RUNSC_SYSCTLS = HandlerLimitation(
    RUNSC, "gVisor does not implement kernel.shm_rmid_forced and fs.mqueue.msg_max (no such /proc/sys files)")
RUNSC_HOST_IPC = HandlerLimitation(RUNSC, "a gVisor sandbox keeps System V IPC in its own kernel: it cannot share "
                                   "the host's IPC namespace")
RUNSC_HOST_PID = HandlerLimitation(RUNSC, "a gVisor sandbox has a PID namespace of its own: host processes are not "
                                   "visible in it")
RUNSC_PROC_NET = HandlerLimitation(
    RUNSC, "gVisor's /proc/net/tcp lists only the sandbox's own sockets, so netstat cannot show the host's "
    "(connecting to them works: the container is on the host's network)")
RUNSC_POD_PID = HandlerLimitation(
    RUNSC, "the reference runtime runs every container as a gVisor sandbox of its own (conmon must hold its stdio "
    "and see its exit, which a gVisor subcontainer does not allow), so containers share no pod PID namespace",
    runtime_name=REFERENCE_RUNTIME)
RUNSC_SETUID = HandlerLimitation(
    RUNSC, "gVisor ignores set-user-ID bits (google/gvisor#212): every process runs as if no_new_privs were set")
RUNSC_EXEC_SECCOMP = HandlerLimitation(
    RUNSC, "runsc applies the OCI seccomp profile (--oci-seccomp) to the container's first process only, and the "
    "spec checks it in an exec'd one")
RUNSC_MASKED_PATHS = HandlerLimitation(RUNSC, "runsc ignores the OCI spec's maskedPaths and readonlyPaths")
RUNSC_BRIDGE = HandlerLimitation(RUNSC, "gVisor has no bridge ioctls: brctl addbr fails with ENOTTY whatever the "
                                 "capabilities")
RUNSC_RAW_SOCKETS = HandlerLimitation(
    RUNSC, "gVisor on the host network (--network=host) has no raw sockets, so ping fails whatever the "
    "capabilities")
