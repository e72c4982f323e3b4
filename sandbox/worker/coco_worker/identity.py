"""Who runs what inside the sandbox when the worker starts as root (gVisor: its /proc ignores PR_SET_DUMPABLE,
so a job of the worker's own uid could open the worker's channel through /proc/<worker>/fd).

Then each job runs under a uid of its own (`--job-uid`) and each warm renderer service under the sandbox user
(`--service-uid`): a job can open, trace and signal neither the zygote, its runner nor a service, and its
process limit (RLIMIT_NPROC, counted per uid by the sandbox's own kernel) counts its processes alone. The worker
keeps only what that needs (SETUID, SETGID, SETPCAP to leave, CHOWN for the job's folder, KILL, FOWNER and
DAC_OVERRIDE to end and wipe what the job left); every process that drops here ends with no capability at all,
its bounding set empty. Unset (the default, and under runc), everything runs as the image's unprivileged user.
"""

from __future__ import annotations

import ctypes
import os

PR_CAPBSET_DROP = 24
CAP_LAST = 63  # drop every number the kernel might know; unknown ones fail with EINVAL and are skipped
JOB_UID: list[int | None] = [None]
SERVICE_UID: list[int | None] = [None]


def configure(job_uid: int | None, service_uid: int | None) -> None:
    """Set at start-up from the worker's flags; a worker asked to switch users must be root."""
    if (job_uid is not None or service_uid is not None) and os.geteuid() != 0:
        raise SystemExit("coco worker: --job-uid/--service-uid need the worker to start as root")
    for uid in (job_uid, service_uid):
        if uid is not None and not 0 < uid < 1 << 31:
            raise SystemExit(f"coco worker: {uid} is not a uid a job or service may run as")
    if job_uid is not None and job_uid == service_uid:
        raise SystemExit("coco worker: a job may not share its uid with the services")
    JOB_UID[0], SERVICE_UID[0] = job_uid, service_uid


def make_jobs_root(path: str, exist_ok: bool = True) -> None:
    """Make the folder holding the job folders: 0711 when each job runs under its own uid (it must pass
    through; it cannot list its neighbours), else 0700 (chmod too: the umask may have narrowed the mode)."""
    mode = 0o711 if JOB_UID[0] is not None else 0o700
    os.makedirs(path, mode=mode, exist_ok=exist_ok)
    os.chmod(path, mode)


def hand_to_job(path: str) -> None:
    """Give the job's own folder to the job's uid (the runner made it as root)."""
    if JOB_UID[0] is not None:
        os.chown(path, JOB_UID[0], JOB_UID[0])


def hand_to_service(path: str) -> None:
    """Give a service's scratch folder (a browser profile) to the service's uid."""
    if SERVICE_UID[0] is not None:
        os.chown(path, SERVICE_UID[0], SERVICE_UID[0])


def become_job() -> None:
    """In a job's process, first thing after the fork: leave root for the job's uid (no-op when unset)."""
    if JOB_UID[0] is not None:
        _become(JOB_UID[0])


def become_service() -> None:
    """In a service's process, before its exec: leave root for the sandbox user (no-op when unset)."""
    if SERVICE_UID[0] is not None:
        _become(SERVICE_UID[0])


def _become(uid: int) -> None:
    """Empty the bounding set, then set every uid and gid to `uid`, no supplementary groups: the kernel
    clears the permitted and effective sets on that change, and with no-new-privileges and an empty bounding
    set nothing executed later can gain any back. Raises when any of it did not take."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(CAP_LAST + 1):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() != 22:  # EINVAL: no such cap
            raise OSError(ctypes.get_errno(), f"cannot drop capability {cap} from the bounding set")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (uid, uid, uid) or os.getgroups():
        raise OSError(f"the switch to uid {uid} did not take")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise OSError("root could be taken back after the switch")
