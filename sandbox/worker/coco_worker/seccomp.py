"""The job's seccomp filter: BPF built here, installed by each job process before its program runs.

Stacked on the sandbox's own profile (Docker's default in the pool): what a drawing program never needs, and
every way to reach a process the job did not start (its runner, the zygote, PID 1), whatever uid the job shares
with them. Errno, not kill: the program sees EPERM (ENOSYS for clone3, so libc falls back to clone).
"""

from __future__ import annotations

import ctypes
import struct

# Installed by each job process before the program runs, on top of the container's own profile (Docker's
# default): what a drawing program never needs, and every way to reach a process the job did not start (its
# runner, the zygote, PID 1), whatever uid the job shares with them. Errno, not kill: the program sees EPERM.
SYSCALLS = {  # name: (x86_64, aarch64)
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "kcmp": (312, 272),
    "pidfd_getfd": (438, 438),
    "pidfd_send_signal": (424, 424),
    "process_madvise": (440, 440),
    "perf_event_open": (298, 241),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "keyctl": (250, 219),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "unshare": (272, 97),
    "setns": (308, 268),
    "mount": (165, 40),
    "umount2": (166, 39),
    "clone": (56, 220),
    "clone3": (435, 435),
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "rt_sigqueueinfo": (129, 138),
    "rt_tgsigqueueinfo": (297, 240),
    "pidfd_open": (434, 434),
    "prlimit64": (302, 261),
    "setpriority": (141, 140),
    "sched_setparam": (142, 118),
    "sched_setscheduler": (144, 119),
    "sched_setaffinity": (203, 122),
    "sched_setattr": (314, 274),
    "ioprio_set": (251, 30),
    "ioprio_get": (252, 31),
    "migrate_pages": (256, 238),
    "move_pages": (279, 239),
    "shmget": (29, 194),
    "semget": (64, 190),
    "msgget": (68, 186),
    "mq_open": (240, 180),
}


DENIED = [
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "pidfd_send_signal",
    "process_madvise",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "mount",
    "umount2",
    # System V IPC objects and POSIX message queues outlive the process that made them; no drawing program
    # needs them (multiprocessing's semaphores live in /dev/shm, wiped after each job), and not every
    # sandbox can list them afterwards (gVisor has no /proc/sysvipc): refused at creation
    "shmget",
    "semget",
    "msgget",
    "mq_open",
]


# First argument names a process (a process group when negative; -1: every process the caller may signal).
TARGETS_PID = [
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "prlimit64",
    "sched_setparam",
    "sched_setscheduler",
    "sched_setaffinity",
    "sched_setattr",
    "migrate_pages",
    "move_pages",
]


# (which, who): the `which` that means "every process of a user" is refused outright, `who` is checked.
WHICH_WHO = {"setpriority": 2, "ioprio_set": 3}  # PRIO_USER, IOPRIO_WHO_USER


CLONE_NEW_NAMESPACES = 0x7E020000  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET


ARCHES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}  # AUDIT_ARCH_*, column in SYSCALLS


RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000


EPERM, ENOSYS = 1, 38


LD_W_ABS, JEQ_K, JGE_K, JSET_K, JA, RET_K = 0x20, 0x15, 0x35, 0x45, 0x05, 0x06


PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2


def _assemble(program: list) -> bytes:
    """BPF bytes from (code, jt, jf, k) tuples and ("label", name) markers; jt/jf/k may name a label."""
    where, count = {}, 0
    for item in program:
        if item[0] == "label":
            where[item[1]] = count
        else:
            count += 1
    out, index = [], 0
    for item in program:
        if item[0] == "label":
            continue
        code, jt, jf, k = item
        index += 1
        jt, jf = (where[x] - index if isinstance(x, str) else x for x in (jt, jf))
        if code == JA and isinstance(k, str):
            k = where[k] - index
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError("seccomp filter jump out of range")
        out.append(struct.pack("=HBBI", code, jt, jf, k & 0xFFFFFFFF))
    return b"".join(out)


def job_filter(protected: list[int], machine: str | None = None) -> bytes | None:
    """The job's seccomp program (BPF) for this machine; None where the architecture is not known here.

    `protected`: pids and process groups the job must not reach (its runner, the zygote, PID 1).
    """
    import platform

    arch = ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit, column = arch
    nr = {name: numbers[column] for name, numbers in SYSCALLS.items()}
    values = {0xFFFFFFFF}  # -1
    for value in protected:
        if value > 0:
            values |= {value, (-value) & 0xFFFFFFFF}
    arg = [16 + 8 * i for i in range(6)]  # low 32 bits of args[i] in struct seccomp_data (little-endian)
    prog: list = [(LD_W_ABS, 0, 0, 4), (JEQ_K, 1, 0, audit), (RET_K, 0, 0, RET_ERRNO | EPERM)]
    prog.append((LD_W_ABS, 0, 0, 0))
    if audit == ARCHES["x86_64"][0]:
        prog.append((JGE_K, "deny", 0, 0x40000000))  # the x32 ABI
    prog += [(JEQ_K, "deny", 0, nr[name]) for name in DENIED]
    prog += [(JEQ_K, "enosys", 0, nr["clone3"]), (JA, 0, 0, "rules")]
    prog += [("label", "deny"), (RET_K, 0, 0, RET_ERRNO | EPERM)]
    prog += [("label", "enosys"), (RET_K, 0, 0, RET_ERRNO | ENOSYS), ("label", "rules")]

    def rule(i: int, name: str, body: list) -> None:
        prog.extend([(JEQ_K, 0, f"next{i}", nr[name]), *body, (RET_K, 0, 0, RET_ALLOW)])
        prog.extend([("label", f"deny{i}"), (RET_K, 0, 0, RET_ERRNO | EPERM), ("label", f"next{i}")])
        prog.append((LD_W_ABS, 0, 0, 0))

    rule(0, "clone", [(LD_W_ABS, 0, 0, arg[0]), (JSET_K, "deny0", 0, CLONE_NEW_NAMESPACES)])
    checks = [(JEQ_K, "deny{i}", 0, value) for value in sorted(values)]
    for i, name in enumerate(TARGETS_PID, start=1):
        rule(i, name, [(LD_W_ABS, 0, 0, arg[0])] + [(c, jt.format(i=i), jf, k) for c, jt, jf, k in checks])
    for i, (name, every_user) in enumerate(WHICH_WHO.items(), start=len(TARGETS_PID) + 1):
        body = [(LD_W_ABS, 0, 0, arg[0]), (JEQ_K, f"deny{i}", 0, every_user), (LD_W_ABS, 0, 0, arg[1])]
        rule(i, name, body + [(c, jt.format(i=i), jf, k) for c, jt, jf, k in checks])
    prog.append((RET_K, 0, 0, RET_ALLOW))
    return _assemble(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_job_filter(protected: list[int]) -> bool:
    """Install the job's seccomp filter on this process (inherited by everything it starts); False where
    this machine's architecture has no table here. Raises OSError when the kernel refuses it."""
    program = job_filter(protected)
    if program is None:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buf))
    if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) refused the job's filter")
    return True
