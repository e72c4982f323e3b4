"""coco sandbox worker: runs drawing programs, one forked child per job, and returns PNG bytes.

Runs inside the sandbox (container, bubblewrap or a plain subprocess) with the standard library and the
renderers only. Talks frames on a dedicated channel (the original stdin/stdout, moved to private fds at
start-up; fd 0/1 then point at /dev/null and stderr), so whatever a program prints is data, never protocol.

Frame: 4-byte big-endian header length, UTF-8 JSON header, then ``header["payload_len"]`` raw bytes.
  host -> worker  {"type": "job", "id", "format": matplotlib|pil|svg, "timeout", "limits": {...}} + code
                  {"type": "ping"} | {"type": "exit"}
  worker -> host  {"type": "ready", "pid", "python", "preloaded"} once at start-up
                  {"type": "result", "id", "status", "error", "stdout", "stderr", "seconds", "width",
                   "height", "captured", "text_boxes"} + PNG bytes (status ok only) | {"type": "pong"}
"text_boxes" lists where the picture shows drawn text, [[x0, y0, x1, y1], ...] in the PNG's pixels (top-left
origin, x1/y1 exclusive), from the drawing calls themselves (matplotlib Text artists, PIL ImageDraw.text, SVG
text elements); null when unknown. The program controls the process that measures them: the host validates.
The worker serves jobs until EOF, "exit" or ``--max-jobs``; a warm pool can keep one worker for many jobs.
With ``--reset`` (warm pool) each result also says whether the container is clean for the next job: every
process but the worker gone, no System V IPC objects left, and /tmp and /dev/shm wiped back to their start
state ("clean", "unclean" in the result header); the host recycles the container when it is not.

Per job the child: setsid, a fresh empty job dir as cwd, fds 0/1/2 -> /dev/null and two capped pipes,
protocol fds closed, rlimits (CPU, file size, open files, core, optionally address space), then the program.
The parent waits with a deadline, kills the child's session and every descendant left behind (the worker is
a child subreaper, so double-forked escapees come back to it), and sends one result frame.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import io
import json
import os
import resource
import selectors
import shutil
import signal
import stat
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Single-threaded renderers: the worker forks, and a forked BLAS thread pool would deadlock.
for _name, _value in {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "MPLBACKEND": "Agg",
    "PYTHONDONTWRITEBYTECODE": "1",
}.items():
    os.environ.setdefault(_name, _value)

MAX_HEADER = 1 << 20
PROGRAM_NAME = "program.py"
CJK_FONTS = ["WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP"]
CJK_ALIASES = [
    "SimHei",
    "Microsoft YaHei",
    "SimSun",
    "KaiTi",
    "FangSong",
    "Heiti TC",
    "STHeiti",
    "PingFang SC",
]
CJK_ALIASES += ["Arial Unicode MS", "Noto Sans CJK SC", "Source Han Sans CN", "WenQuanYi Zen Hei"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
DEFAULT_LIMITS = {
    "output_bytes": 64 * 1024,
    "max_png_bytes": 32 * 1024 * 1024,
    "max_pixels": 40_000_000,
    "file_bytes": 64 * 1024 * 1024,
    "nofile": 256,
    "address_space_mb": 0,  # 0: no RLIMIT_AS (containers use the memory cgroup instead)
}
MPL_SEED = ""  # the font cache /tmp/mplconfig was copied from (restored after each job with --reset)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
MAX_TEXT_BOXES = 1000  # more text boxes than this: reported as unknown (null)
SVG_BOX_PIXELS = 8_000_000  # SVG text boxes (two renders compared) only for pictures up to this size
WATCH_EVERY_S = 0.05  # how often the parent polls the job (exit, and the Watchdog's limits)
# Signals a job (same uid) could send its worker: ignored there, restored to their defaults in each job.
WORKER_IGNORES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGPROF")


# ---------------------------------------------------------------- frames


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly n bytes from fd; None on EOF before the first byte, EOFError on a torn frame."""
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            if got == 0:
                return None
            raise EOFError(f"channel closed mid-frame ({got}/{n} bytes)")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_payload: int) -> tuple[dict, bytes] | None:
    """Read one frame (header dict, payload) or None on a clean EOF."""
    raw = read_exact(fd, 4)
    if raw is None:
        return None
    (size,) = struct.unpack(">I", raw)
    if size > MAX_HEADER:
        raise ValueError(f"frame header too large: {size} bytes")
    header = json.loads(read_exact(fd, size) or b"{}")
    length = int(header.get("payload_len", 0))
    if length < 0 or length > max_payload:
        raise ValueError(f"frame payload of {length} bytes exceeds {max_payload}")
    payload = (read_exact(fd, length) or b"") if length else b""
    return header, payload


# Bound at import, in the zygote: a job that replaces json.dumps or os.write in its own process still gets
# its result frame written by the originals.
_dumps, _pack, _write = json.dumps, struct.pack, os.write


def write_frame(fd: int, header: dict, payload: bytes = b"") -> None:
    """Write one frame: length-prefixed JSON header and raw payload."""
    header = dict(header, payload_len=len(payload))
    data = _dumps(header, ensure_ascii=True).encode()
    buf = memoryview(_pack(">I", len(data)) + data + payload)
    while buf:
        buf = buf[_write(fd, buf) :]


# ---------------------------------------------------------------- capped output


class Capped:
    """Keeps the head and the tail of a stream, at most `cap` bytes in all; counts what was dropped."""

    def __init__(self, cap: int) -> None:
        self.cap, self.head, self.tail, self.dropped = cap, bytearray(), bytearray(), 0

    def add(self, data: bytes) -> None:
        room = self.cap // 2 - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            excess = len(self.tail) - (self.cap - self.cap // 2)
            if excess > 0:
                del self.tail[:excess]
                self.dropped += excess

    def text(self) -> str:
        out = bytes(self.head).decode("utf-8", "replace")
        if self.dropped:
            out += f"\n[... {self.dropped} bytes dropped ...]\n"
        return (out + bytes(self.tail).decode("utf-8", "replace")).replace("\x00", "\\x00")


# ---------------------------------------------------------------- process hygiene


def _prctl(option: int, value: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (scans /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def reap_all(child: int | None, budget_s: float = 2.0) -> int:
    """SIGKILL the job's session and every process reparented to us (as PID 1: every other process in the
    namespace); returns how many were killed."""
    killed = 0
    if child:
        with contextlib.suppress(OSError):
            os.killpg(child, signal.SIGKILL)
    end = time.monotonic() + budget_s
    while time.monotonic() < end:
        kids = job_processes()
        for pid in kids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        while True:  # reap zombies
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not kids:
            break
        time.sleep(0.01)
    return killed


# ---------------------------------------------------------------- the job's seccomp filter

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


# ---------------------------------------------------------------- the worker's own settings

RLIMITS = sorted(name for name in dir(resource) if name.startswith("RLIMIT_"))


def process_state(pid: int) -> dict:
    """What a job could change about a process of the same uid: its limits, nice, scheduling policy and
    priority, CPU affinity, I/O priority and OOM score. Numbers only (this is compared, and may be reported)."""
    state: dict = {}
    for name in RLIMITS:
        with contextlib.suppress(OSError, ValueError):
            state[name] = resource.prlimit(pid, getattr(resource, name))
    probes = {
        "nice": lambda: os.getpriority(os.PRIO_PROCESS, pid),
        "policy": lambda: os.sched_getscheduler(pid),
        "priority": lambda: os.sched_getparam(pid).sched_priority,
        "affinity": lambda: sorted(os.sched_getaffinity(pid)),
        "ioprio": lambda: _ioprio_get(pid),
        "oom_score_adj": lambda: int(Path(f"/proc/{pid or 'self'}/oom_score_adj").read_text()),
    }
    for name, probe in probes.items():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            state[name] = probe()
    return state


def _ioprio_get(pid: int) -> int:
    import platform

    arch = ARCHES.get(platform.machine())
    if arch is None:
        raise OSError("no syscall table")
    libc = ctypes.CDLL(None, use_errno=True)
    value = libc.syscall(SYSCALLS["ioprio_get"][arch[1]], 1, pid)  # IOPRIO_WHO_PROCESS
    if value < 0:
        raise OSError(ctypes.get_errno(), "ioprio_get")
    return value


def state_changes(before: dict, after: dict) -> str:
    """'' when nothing changed, else which settings did (names and numbers, never a job's text). Settings
    missing from either reading (a probe another process may not make) are not compared."""
    changed = [
        f"{k} {before[k]!r} -> {after[k]!r}" for k in sorted(before) if k in after and before[k] != after[k]
    ]
    return "; ".join(changed)[:300]


# ---------------------------------------------------------------- capture (runs in the child)


class Capture:
    """Collects the picture a program drew, whatever way it chose to save (or not save) it."""

    def __init__(self, fmt: str, max_pixels: int) -> None:
        self.fmt, self.max_pixels = fmt, max_pixels
        self.figures: list[tuple[bytes, str, list | None]] = []  # (PNG, how, text boxes) at savefig/show
        self.pil_saved: tuple | None = None  # (copy of the last saved/shown image, how)
        self.pil_created = None  # the last image made by Image.new
        self._savefig = None
        self._grabbing = None  # the figure the worker itself is saving (text boxes are measured then)
        self._mpl_pass: dict | None = None  # that save's current draw: renderer, canvas size, boxes
        self._pil_depth = 0  # nested ImageDraw.text/multiline_text calls (only the outer one is measured)

    # matplotlib ------------------------------------------------------------
    def install_matplotlib(self) -> None:
        try:
            import matplotlib.figure
            import matplotlib.pyplot as plt
        except ImportError:
            return
        cap = self
        original_savefig = self._savefig = matplotlib.figure.Figure.savefig
        original_use, original_switch = matplotlib.use, plt.switch_backend

        def use(backend, *args, **kwargs):  # headless: any backend request becomes Agg
            return original_use("Agg", *args, **kwargs)

        def switch_backend(newbackend):
            return original_switch("agg")

        def savefig(fig, fname, *args, **kwargs):
            cap.grab_figure(fig, f"savefig:{_name_of(fname)}", original_savefig, kwargs)
            return original_savefig(fig, fname, *args, **kwargs)

        def show(*args, **kwargs):
            for num in plt.get_fignums():
                cap.grab_figure(plt.figure(num), "show", original_savefig, {})

        def figure_show(fig, *args, **kwargs):
            cap.grab_figure(fig, "show", original_savefig, {})

        from matplotlib.backends import backend_agg

        original_renderer = backend_agg.RendererAgg.__init__

        @functools.wraps(original_renderer)
        def renderer_init(renderer, width, height, dpi):  # every Agg canvas, whatever asked for it
            check_pixels(width, height, cap.max_pixels, "figure canvas")
            original_renderer(renderer, width, height, dpi)

        backend_agg.RendererAgg.__init__ = renderer_init
        matplotlib.figure.Figure.savefig = savefig
        matplotlib.figure.Figure.show = figure_show
        plt.show = show
        matplotlib.use = use
        plt.switch_backend = switch_backend
        self.install_text_measuring()

    def install_text_measuring(self) -> None:
        """Measure every Text artist drawn while the worker saves a figure, on the renderer of that save.

        A save may draw the figure more than once (bbox_inches="tight" first draws to measure); each draw of
        the grabbed figure starts the list afresh, so the boxes are those of the draw that made the PNG, in its
        pixels (savefig dpi, tight crop and all). Measured inside Text.draw, while subclasses (3-D text,
        wrapped text) still hold the position and string they draw.
        """
        import matplotlib.figure
        import matplotlib.text

        cap = self
        original_figure_draw, original_text_draw = matplotlib.figure.Figure.draw, matplotlib.text.Text.draw

        @functools.wraps(original_figure_draw)  # keeps _supports_rasterization and the like
        def figure_draw(fig, renderer, *args, **kwargs):
            if fig is cap._grabbing:
                size = getattr(renderer, "get_canvas_width_height", lambda: None)()
                cap._mpl_pass = {"renderer": renderer, "size": size, "boxes": [], "bad": False}
            return original_figure_draw(fig, renderer, *args, **kwargs)

        @functools.wraps(original_text_draw)
        def text_draw(text, renderer, *args, **kwargs):
            result = original_text_draw(text, renderer, *args, **kwargs)
            run = cap._mpl_pass
            if run is not None and renderer is run["renderer"] and not run["bad"]:
                try:
                    box = _mpl_text_box(text, renderer, run["size"])
                except Exception:
                    box, run["bad"] = None, True
                if box is not None:
                    run["boxes"].append(box)
            return result

        matplotlib.figure.Figure.draw = figure_draw
        matplotlib.text.Text.draw = text_draw

    def grab_figure(self, fig, how: str, savefig, kwargs: dict) -> None:
        w, h = fig.get_size_inches()
        dpi = kwargs.get("dpi")
        dpi = fig.dpi if dpi is None or isinstance(dpi, str) else dpi  # "figure": the figure's own
        check_pixels(_number(w) * _number(dpi), _number(h) * _number(dpi), self.max_pixels, "figure")
        keep = {k: v for k, v in kwargs.items() if k not in {"format", "metadata", "pil_kwargs", "backend"}}
        buf = io.BytesIO()
        self._grabbing, self._mpl_pass = fig, None
        try:
            try:
                savefig(fig, buf, format="png", **keep)
            except Rejected:
                raise
            except Exception:
                buf, self._mpl_pass = io.BytesIO(), None
                savefig(fig, buf, format="png")
            png, run = buf.getvalue(), self._mpl_pass
        finally:
            self._grabbing, self._mpl_pass = None, None
        boxes, size = None, png_dimensions(png)
        if run is not None and not run["bad"] and _same_canvas(run["size"], size):
            boxes = run["boxes"]  # the draw that made this PNG, on a canvas of the PNG's size
        self.figures.append((png, how, boxes))

    def open_figures(self) -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None and self._savefig is not None and plt.get_fignums():
            self.grab_figure(plt.gcf(), "open figure", self._savefig, {})

    # PIL -------------------------------------------------------------------
    def install_pil(self) -> None:
        try:
            from PIL import Image
        except ImportError:
            return
        cap = self
        original_save, original_new = Image.Image.save, Image.new

        def save(im, fp, *args, **kwargs):
            cap.pil_saved = (im.copy(), f"save:{_name_of(fp)}")
            return original_save(im, fp, *args, **kwargs)

        def show(im, *args, **kwargs):
            cap.pil_saved = (im.copy(), "show")

        def new(*args, **kwargs):
            size = kwargs.get("size", args[1] if len(args) > 1 else None)
            with contextlib.suppress(TypeError, ValueError):  # a malformed size: PIL's own error
                width, height = size
                check_pixels(width, height, cap.max_pixels, "image")
            im = cap.pil_created = original_new(*args, **kwargs)
            if sys._getframe(1).f_code.co_filename == PROGRAM_NAME:
                setattr(im, PIL_TEXT, [])  # the program's own blank canvas: no text on it yet
            return im

        def sized(original, size_of):  # methods that allocate a new image of a size the caller chooses
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                try:
                    width, height = size_of(*args, **kwargs)
                except (TypeError, ValueError, IndexError):
                    width = height = None
                if width is not None:
                    check_pixels(width, height, cap.max_pixels, "image")
                return original(im, *args, **kwargs)

            return method

        Image.MAX_IMAGE_PIXELS = max(1, self.max_pixels // 2)  # opening more than the cap is an error
        Image.Image.save, Image.Image.show, Image.new = save, show, new
        Image.Image.resize = sized(Image.Image.resize, lambda size, *a, **k: size)
        Image.Image.transform = sized(Image.Image.transform, lambda size, *a, **k: size)
        Image.Image.crop = sized(Image.Image.crop, lambda box=None, **k: (box[2] - box[0], box[3] - box[1]))
        self.install_pil_text_tracking()

    def install_pil_text_tracking(self) -> None:
        """Follow the text drawn on each PIL image, as boxes stored on the image (attribute PIL_TEXT).

        Known only for images the program made with Image.new, then kept through what leaves every pixel in
        place (copy, convert, paste/alpha_composite/composite/blend of images that are known themselves).
        Anything else (an opened file, a resize, crop, rotate, thumbnail, numpy round trip, a failed
        measurement) leaves an image without boxes: unknown, never a wrong list.
        """
        import inspect

        from PIL import Image, ImageDraw

        cap = self
        draw_cls = ImageDraw.ImageDraw
        original_text, original_multiline = draw_cls.text, draw_cls.multiline_text
        measure = set(inspect.signature(draw_cls.textbbox).parameters) - {"self"}

        def wrap_text(original):
            signature = inspect.signature(original)

            @functools.wraps(original)
            def text(draw, *args, **kwargs):
                cap._pil_depth += 1
                try:
                    result = original(draw, *args, **kwargs)
                finally:
                    cap._pil_depth -= 1
                if cap._pil_depth == 0:
                    _note_pil_text(draw, signature, measure, args, kwargs)
                return result

            return text

        def keep(original):  # same pixels in the same places: the boxes carry over
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                out = original(im, *args, **kwargs)
                boxes = getattr(im, PIL_TEXT, None)
                if isinstance(out, Image.Image) and out.size == im.size and boxes is not None:
                    setattr(out, PIL_TEXT, list(boxes))
                return out

            return method

        def forget(original):  # pixels replaced or moved in place
            @functools.wraps(original)
            def method(im, *args, **kwargs):
                setattr(im, PIL_TEXT, None)
                return original(im, *args, **kwargs)

            return method

        original_paste, original_alpha = Image.Image.paste, Image.Image.alpha_composite

        def paste(target, im, box=None, mask=None):  # Pillow's parameter names: callers use them
            result = original_paste(target, im, box, mask)
            if isinstance(box, Image.Image):  # paste(image, mask)
                box = None
            if isinstance(im, Image.Image):
                _add_pil_boxes(target, im, box)
            return result

        def alpha_composite(target, im, dest=(0, 0), source=(0, 0)):
            result = original_alpha(target, im, dest, source)
            if tuple(source) == (0, 0):
                _add_pil_boxes(target, im, dest)
            else:
                setattr(target, PIL_TEXT, None)
            return result

        def combine(original):  # Image.alpha_composite / composite / blend: two same-size images
            @functools.wraps(original)
            def function(first, second, *args, **kwargs):
                out = original(first, second, *args, **kwargs)
                a, b = getattr(first, PIL_TEXT, None), getattr(second, PIL_TEXT, None)
                if a is not None and b is not None and first.size == second.size == out.size:
                    setattr(out, PIL_TEXT, [*a, *b])
                return out

            return function

        draw_cls.text, draw_cls.multiline_text = wrap_text(original_text), wrap_text(original_multiline)
        Image.Image.copy = keep(Image.Image.copy)
        Image.Image.convert = keep(Image.Image.convert)
        for name in ("thumbnail", "putdata", "frombytes"):
            setattr(Image.Image, name, forget(getattr(Image.Image, name)))
        Image.Image.paste, Image.Image.alpha_composite = paste, alpha_composite
        for name in ("alpha_composite", "composite", "blend"):
            setattr(Image, name, combine(getattr(Image, name)))

    def pil_from_globals(self, namespace: dict):
        try:
            from PIL import Image
        except ImportError:
            return None
        for name in ("image", "img"):
            if isinstance(namespace.get(name), Image.Image):
                return namespace[name], f"variable:{name}"
        images = [(k, v) for k, v in namespace.items() if isinstance(v, Image.Image)]
        if images:
            return images[-1][1], f"variable:{images[-1][0]}"
        if self.pil_created is not None:
            return self.pil_created, "Image.new"
        return None

    # result ----------------------------------------------------------------
    def result(self, namespace: dict, job_dir: str) -> tuple[bytes, str, list | None] | None:
        """The PNG to return, how it was found and where it shows text (None: unknown), in the order the job's
        format prefers."""
        steps = {
            "matplotlib": [self._mpl, self._pil, self._svg_file, self._image_file],
            "pil": [self._pil, self._mpl, self._image_file, self._svg_file],
            "svg": [self._svg_file, self._mpl, self._pil, self._image_file],
        }[self.fmt]
        for step in steps:
            found = step(namespace, job_dir)
            if found:
                return found
        return None

    def _mpl(self, namespace: dict, job_dir: str):
        if not self.figures:
            self.open_figures()
        return self.figures[-1] if self.figures else None

    def _pil(self, namespace: dict, job_dir: str):
        found = self.pil_saved or self.pil_from_globals(namespace)
        if not found:
            return None
        boxes = getattr(found[0], PIL_TEXT, None)
        return pil_to_png(found[0], self.max_pixels), found[1], None if boxes is None else list(boxes)

    def _svg_file(self, namespace: dict, job_dir: str):
        text = namespace.get("svg")
        if isinstance(text, str | bytes) and _looks_like_svg(text):
            png, boxes = render_svg_with_text_boxes(text, self.max_pixels)
            return png, "variable:svg", boxes
        path = _newest_file(job_dir, (".svg",))
        if path:
            with open(path, "rb") as f:
                png, boxes = render_svg_with_text_boxes(f.read(), self.max_pixels)
            return png, f"file:{os.path.basename(path)}", boxes
        return None

    def _image_file(self, namespace: dict, job_dir: str):
        path = _newest_file(job_dir, IMAGE_SUFFIXES)
        if not path:
            return None
        from PIL import Image

        with Image.open(path) as im:
            return pil_to_png(im, self.max_pixels), f"file:{os.path.basename(path)}", None


class Rejected(Exception):
    """The picture breaks a limit (too many pixels, unsafe SVG)."""


def _number(value) -> float:
    """A size or dpi by value, whatever its type (numpy scalars included); NaN when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return float("nan")


def check_pixels(width, height, cap: int, what: str) -> None:
    """Refuse a raster of width x height before it is allocated: by value (numpy scalars too), NaN and
    infinity included."""
    w, h = _number(width), _number(height)
    if not (w >= 0 and h >= 0 and w * h <= cap):
        shown = f"{w:.0f}x{h:.0f}" if w == w and h == h else f"{width!r}x{height!r}"[:80]
        raise Rejected(f"{what} of {shown} px exceeds the {cap} pixel cap; use a smaller size or dpi")


# ---------------------------------------------------------------- text boxes (runs in the child)

PIL_TEXT = "_coco_text_boxes"  # attribute on a PIL image: its text boxes, None/absent when unknown


def png_dimensions(png: bytes) -> tuple[int, int] | None:
    if len(png) < 24 or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", png[16:24])


def _same_canvas(canvas, png_size) -> bool:
    """Whether a renderer's canvas (float width and height: a tight crop is fractional) made a PNG this size
    (Agg allocates the whole pixels, truncating)."""
    try:
        return png_size is not None and all(0 <= c - p < 1 for c, p in zip(canvas, png_size, strict=True))
    except (TypeError, ValueError):
        return False


def _pixel_box(x0: float, y0: float, x1: float, y1: float) -> list[int]:
    """Whole pixels covering a box (rounded outwards); ValueError for NaN or infinite corners."""
    import math

    return [math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)]


def _mpl_text_box(text, renderer, size) -> list[int] | None:
    """Pixel box (top-left origin) of a Text artist just drawn on `renderer`; None when it draws nothing."""
    if not text.get_visible() or not str(text.get_text()).strip() or size is None:
        return None
    if text.get_wrap() and hasattr(text, "_cm_set") and hasattr(text, "_get_wrapped_text"):
        with text._cm_set(text=text._get_wrapped_text()):
            bbox = text.get_window_extent(renderer)
    else:
        bbox = text.get_window_extent(renderer)
    clip = text.get_clip_box() if text.get_clip_on() else None
    if clip is not None:
        from matplotlib.transforms import Bbox

        bbox = Bbox.intersection(bbox, clip)
        if bbox is None:  # clipped away entirely
            return None
    height = size[1]
    x0, y0, x1, y1 = bbox.extents  # display coordinates: origin bottom-left
    return _pixel_box(x0, height - y1, x1, height - y0)


def _note_pil_text(draw, signature, measure: set, args: tuple, kwargs: dict) -> None:
    """Add the box of one ImageDraw.text/multiline_text call to its image (unknown if it cannot be measured)."""
    image = getattr(draw, "_image", None)
    boxes = getattr(image, PIL_TEXT, None)
    if boxes is None:
        return
    try:
        bound = signature.bind(draw, *args, **kwargs)
        bound.apply_defaults()
        call = {k: v for k, v in bound.arguments.items() if k in measure}
        text = call.get("text")
        if isinstance(text, bytes):
            text = text.decode("latin-1")
        if not str(text).strip():
            return
        boxes.append(_pixel_box(*draw.textbbox(**call)))
    except Exception:
        setattr(image, PIL_TEXT, None)


def _add_pil_boxes(target, source, offset) -> None:
    """After pasting `source` onto `target` at `offset` (None, (x, y) or a 4-box): carry its text boxes over."""
    mine, theirs = getattr(target, PIL_TEXT, None), getattr(source, PIL_TEXT, None)
    if mine is None:
        return
    try:
        dx, dy = (0, 0) if offset is None else (int(offset[0]), int(offset[1]))
    except (TypeError, ValueError, IndexError):
        theirs = None
    if theirs is None:
        setattr(target, PIL_TEXT, None)
        return
    mine.extend([x0 + dx, y0 + dy, x1 + dx, y1 + dy] for x0, y0, x1, y1 in theirs)


def finish_boxes(boxes, png: bytes) -> list[list[int]] | None:
    """Boxes clipped to the PNG, empty ones dropped, at most MAX_TEXT_BOXES (else None: unknown)."""
    size = png_dimensions(png)
    if boxes is None or size is None:
        return None
    width, height = size
    out = []
    for x0, y0, x1, y1 in boxes:
        box = [max(0, x0), max(0, y0), min(width, x1), min(height, y1)]
        if box[0] < box[2] and box[1] < box[3] and box not in out[-8:]:
            out.append(box)
    return out if len(out) <= MAX_TEXT_BOXES else None


def sane_boxes(value) -> list[list[int]] | None:
    """What the worker forwards of the job's box list: a list of at most MAX_TEXT_BOXES [int x4], else None."""
    if not isinstance(value, list) or len(value) > MAX_TEXT_BOXES:
        return None
    for box in value:
        if not (isinstance(box, list) and len(box) == 4 and all(type(v) is int for v in box)):
            return None
    return value


def _name_of(target) -> str:
    if isinstance(target, str | bytes | os.PathLike):
        return os.path.basename(os.fsdecode(target))
    return type(target).__name__


def _newest_file(job_dir: str, suffixes: tuple[str, ...]) -> str | None:
    best, best_mtime = None, -1.0
    for root, _dirs, files in os.walk(job_dir):
        for name in files:
            path = os.path.join(root, name)
            if name.lower().endswith(suffixes) and os.path.isfile(path) and not os.path.islink(path):
                mtime = os.stat(path).st_mtime
                if mtime >= best_mtime:
                    best, best_mtime = path, mtime
    return best


def _looks_like_svg(text: str | bytes) -> bool:
    head = (text[:512].decode("utf-8", "replace") if isinstance(text, bytes) else text[:512]).lstrip(
        "\ufeff \t\r\n"
    )
    return head.startswith(("<svg", "<?xml", "<!DOCTYPE svg", "<!--"))


def pil_to_png(im, max_pixels: int) -> bytes:
    """Encode a PIL image as PNG (converting exotic modes), refusing oversized ones."""
    if im.width * im.height > max_pixels:
        raise Rejected(f"image of {im.width}x{im.height} px exceeds the {max_pixels} pixel cap")
    if im.mode not in {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}:
        im = im.convert("RGBA" if "A" in im.mode else "RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def render_svg_with_text_boxes(text: str | bytes, max_pixels: int) -> tuple[bytes, list | None]:
    """Render SVG, and find its text by rendering it again without text (text, tspan and textPath draw
    nothing): the pixels that differ are the ones the text elements made, grouped into boxes (XY cut).
    Boxes are None (unknown) when the picture is too large to compare or the second render fails."""
    png = render_svg(text, max_pixels)
    size = png_dimensions(png)
    if size is None or size[0] * size[1] > SVG_BOX_PIXELS:
        return png, None
    try:
        import cairosvg.surface
        import numpy as np
        from PIL import Image

        tags = cairosvg.surface.TAGS
        saved = {name: tags[name] for name in ("text", "tspan", "textPath") if name in tags}
        if "text" not in saved:
            return png, None
        tags.update(dict.fromkeys(saved, _draw_nothing))
        try:
            bare = render_svg(text, max_pixels)
        finally:
            tags.update(saved)
        with Image.open(io.BytesIO(png)) as a, Image.open(io.BytesIO(bare)) as b:
            if a.size != b.size:
                return png, None
            drawn = np.asarray(a.convert("RGBA")) != np.asarray(b.convert("RGBA"))
        return png, mask_boxes(drawn.any(axis=2))
    except Exception:
        return png, None


def _draw_nothing(surface, node, *args, **kwargs) -> None:
    return None


def mask_boxes(mask) -> list[list[int]] | None:
    """Boxes covering every True pixel of a 2-D mask, by recursive XY cuts: split at empty rows, then at
    column gaps wider than a third of the piece's height, until no piece splits. None past MAX_TEXT_BOXES."""
    import numpy as np

    def runs(line, gap: int) -> list[tuple[int, int]]:
        idx = np.flatnonzero(line)
        if idx.size == 0:
            return []
        cuts = np.flatnonzero(np.diff(idx) > gap + 1)
        starts = idx[np.concatenate(([0], cuts + 1))]
        ends = idx[np.concatenate((cuts, [idx.size - 1]))] + 1
        return list(zip(starts.tolist(), ends.tolist(), strict=True))

    boxes, todo = [], [(0, 0, mask.shape[1], mask.shape[0])]
    while todo:
        x0, y0, x1, y1 = todo.pop()
        piece = mask[y0:y1, x0:x1]
        rows = runs(piece.any(axis=1), 1)
        if len(rows) > 1:
            todo.extend((x0, y0 + a, x1, y0 + b) for a, b in rows)
            continue
        if not rows:
            continue
        y0, y1 = y0 + rows[0][0], y0 + rows[0][1]
        cols = runs(mask[y0:y1, x0:x1].any(axis=0), max(2, (y1 - y0) // 3))
        if len(cols) > 1:
            todo.extend((x0 + a, y0, x0 + b, y1) for a, b in cols)
            continue
        boxes.append([x0 + cols[0][0], y0, x0 + cols[0][1], y1])
        if len(boxes) > MAX_TEXT_BOXES:
            return None
    return sorted(boxes, key=lambda b: (b[1], b[0]))


EMPTY_SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"></svg>'


SVG_CAP = [40_000_000]  # the pixel cap of the job being rendered (the checks below read it)


def _inline_only(read_url):
    """Wrap cairosvg's URL reader: data: URLs are read (a raster's size checked from its header before
    anything decodes it), anything else (file:, http:, ...) is an empty SVG."""

    def read(url, url_fetcher, resource_type):
        text = url.geturl() if hasattr(url, "geturl") else str(url)
        if not text.startswith("data:"):
            return EMPTY_SVG
        data = read_url(url, url_fetcher, resource_type)
        _check_raster_header(data)
        return data

    return read


def _check_raster_header(data) -> None:
    """Refuse an inlined raster image larger than the cap, from its header (PIL opens lazily)."""
    if not isinstance(data, bytes | bytearray) or _looks_like_svg(bytes(data[:512])):
        return
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        size = (float("inf"), 1)  # PIL itself found it too large
    except (UnidentifiedImageError, OSError, ValueError):
        size = None
    if size is not None:
        check_pixels(size[0], size[1], SVG_CAP[0], "inlined image")


def _checked_surfaces(cairosvg) -> None:
    """Every surface cairosvg makes (the canvas; pattern tiles and masks, which cairo rasterises when it paints
    them) is checked against the pixel cap before cairo allocates anything."""
    for cls in (cairosvg.surface.PNGSurface, cairosvg.surface.SVGSurface):
        if getattr(cls._create_surface, "coco_checked", False):
            continue
        original = cls._create_surface

        def create(surface, width, height, original=original):
            check_pixels(width, height, SVG_CAP[0], "SVG canvas")
            return original(surface, width, height)

        create.coco_checked = True
        cls._create_surface = create


def render_svg(text: str | bytes, max_pixels: int) -> bytes:
    """Render SVG with cairosvg: XML entities off (unsafe=False), no file or network fetching at all, every
    raster it allocates checked against the pixel cap first."""
    import cairosvg
    import cairosvg.parser
    import cairosvg.surface

    if not getattr(cairosvg.parser.read_url, "coco_inline_only", False):
        cairosvg.parser.read_url = _inline_only(cairosvg.parser.read_url)
        cairosvg.parser.read_url.coco_inline_only = True
    _checked_surfaces(cairosvg)
    SVG_CAP[0] = max_pixels
    data = text.encode() if isinstance(text, str) else text
    png = cairosvg.svg2png(bytestring=data, unsafe=False)
    width, height = struct.unpack(">II", png[16:24])
    if width * height > max_pixels:
        raise Rejected(f"SVG of {width}x{height} px exceeds the {max_pixels} pixel cap")
    return png


# ---------------------------------------------------------------- the child


def run_child(code: bytes, fmt: str, limits: dict, result_fd: int) -> None:
    """Runs in the forked child: execute the program, capture its picture, write one frame, exit."""
    status, error, png, how, boxes = "ok", "", b"", "", None
    namespace: dict = {"__name__": "__main__", "__file__": PROGRAM_NAME, "__builtins__": __builtins__}
    capture = Capture(fmt, limits["max_pixels"])
    try:
        source = code.decode("utf-8")
        if fmt == "svg" and _looks_like_svg(source):
            (png, boxes), how = render_svg_with_text_boxes(code, limits["max_pixels"]), "svg text"
        else:
            capture.install_matplotlib()
            capture.install_pil()
            import linecache

            linecache.cache[PROGRAM_NAME] = (len(source), None, source.splitlines(True), PROGRAM_NAME)
            sys.argv = [PROGRAM_NAME]
            sys.path.insert(0, os.getcwd())  # like `python program.py`: the program's folder is importable
            compiled = compile(source, PROGRAM_NAME, "exec", dont_inherit=True)
            try:
                exec(compiled, namespace)
            except SystemExit as exc:
                if exc.code not in (None, 0):
                    raise
            sys.stdout.flush()
            sys.stderr.flush()
            found = capture.result(namespace, os.getcwd())
            if found:
                png, how, boxes = found
            else:
                status, error = (
                    "no_image",
                    "the program ran but drew nothing (no figure, image or file to capture)",
                )
    except Rejected as exc:
        status, error = "rejected", str(exc)
    except MemoryError:
        status, error = "oom", "MemoryError: the program ran out of memory"
    except BaseException:
        status, error = "error", _program_traceback()
    if png and len(png) > limits["max_png_bytes"]:
        status, error, png = "rejected", f"PNG of {len(png)} bytes exceeds {limits['max_png_bytes']}", b""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    header = {"status": status, "error": error, "captured": how}
    if status == "ok":
        try:
            header["text_boxes"] = finish_boxes(boxes, png)
        except Exception:  # a program that broke the measuring: unknown, never a failed job
            header["text_boxes"] = None
    write_frame(result_fd, header, png if status == "ok" else b"")
    os._exit(0)


def _program_traceback() -> str:
    """Traceback limited to the program's own frames (the worker's are noise to the code writer)."""
    etype, value, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code.co_filename != PROGRAM_NAME:
        tb = tb.tb_next
    lines = traceback.format_exception(etype, value, tb)
    text = "".join(lines)
    return text[-8000:]


def _child_setup(
    job_dir: str, out_w: int, err_w: int, keep_fd: int, limits: dict, timeout: float, protected: list[int]
) -> None:
    os.setsid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_DUMPABLE, 1)  # as after any exec: the worker (no capabilities) may read its smaps
    os.chdir(job_dir)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1 << 16)
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace", line_buffering=True
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
    )
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    for name in WORKER_IGNORES:
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead of killing
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    cpu = int(timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if limits.get("address_space_mb"):  # on top of what the warm worker already maps
        size = _vm_size() + (int(limits["address_space_mb"]) << 20)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))
    try:  # be the first the OOM killer picks, never the worker
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    install_job_filter(protected)  # last: from here on the job cannot reach its runner or the zygote


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) << 10
    return 0


# ---------------------------------------------------------------- the parent


EXIT_JOB, EXIT_STOP = 0, 10  # a runner's exit codes: one job served / the host said exit (or EOF)
SETUP_FAILED = 71  # a job process's exit code when its limits or seccomp filter could not be set


class Runner:
    """One job's supervisor: forked from the pristine zygote before any job byte is read, it reads frames
    (answering pings) until a job arrives, forks the job's process, relays its result and exits.

    Everything a job leaves in memory (its source, what it printed, its PNG) lives in this process and the
    job's, both gone before the zygote forks the next runner: no later job inherits it.
    """

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote
        self.chan_in, self.chan_out = zygote.chan_in, zygote.chan_out
        self.jobs_root, self.reset, self.keep = zygote.jobs_root, zygote.reset, zygote.keep

    def serve_one(self) -> int:
        """Serve frames until one job is done (EXIT_JOB) or the host is gone (EXIT_STOP)."""
        while True:
            frame = read_frame(self.chan_in, max_payload=16 << 20)
            if frame is None:
                return EXIT_STOP
            header, payload = frame
            kind = header.get("type")
            if kind == "exit":
                return EXIT_STOP
            if kind == "ping":
                write_frame(self.chan_out, {"type": "pong", "jobs": self.zygote.count})
                continue
            if kind == "job":
                break
            write_frame(self.chan_out, {"type": "error", "error": f"unknown frame type {kind!r}"})
        result, png = self.run_job(header, payload)
        doubt = result.pop("doubt", "")
        if self.reset:
            problem = doubt or self.reset_scratch() or self.zygote.changed()
            result.update(clean=not problem, unclean=problem)
        write_frame(self.chan_out, result, png)
        return EXIT_JOB

    def reset_scratch(self) -> str:
        """Make the sandbox as the next job must find it; '' when clean, else what is left (recycle then)."""
        left = job_processes()
        if left:
            return f"{len(left)} process(es) outlived the job"
        if sysv_ipc_objects():
            return "System V IPC objects left behind"
        if posix_mqueues():
            return "POSIX message queues left behind"
        try:
            for folder in (tempfile.gettempdir(), "/dev/shm"):
                if os.path.isdir(folder) and not os.path.islink(folder):
                    wipe_folder(folder, self.keep)
            os.makedirs(self.jobs_root, mode=0o700)
            mpl = os.environ.get("MPLCONFIGDIR", "")
            if MPL_SEED and mpl:
                shutil.copytree(MPL_SEED, mpl)
        except (OSError, RecursionError) as exc:
            return f"cannot wipe the scratch space: {exc!r}"[:300]
        return ""

    def run_job(self, job: dict, code: bytes) -> tuple[dict, bytes]:
        limits = dict(DEFAULT_LIMITS, **(job.get("limits") or {}))
        fmt = job.get("format", "matplotlib")
        timeout = float(job.get("timeout", 30.0))
        base = {"type": "result", "id": job.get("id"), "stdout": "", "stderr": "", "width": 0, "height": 0}
        if fmt not in {"matplotlib", "pil", "svg"}:
            return dict(base, status="error", error=f"unknown format {fmt!r}", seconds=0.0), b""
        job_dir = tempfile.mkdtemp(prefix="job-", dir=self.jobs_root)
        os.chmod(job_dir, 0o700)
        started = time.monotonic()
        try:
            header, png = self._fork_and_wait(code, fmt, limits, timeout, job_dir)
        finally:
            with contextlib.suppress(OSError, RecursionError):  # too deep: reset_scratch reports it
                remove_tree(job_dir)  # also when the job made parts of it unreadable (chmod 000)
        header = dict(base, **header, seconds=round(time.monotonic() - started, 4))
        if png and len(png) >= 24 and png[:8] == b"\x89PNG\r\n\x1a\n":
            header["width"], header["height"] = struct.unpack(">II", png[16:24])
        return header, png

    def _fork_and_wait(self, code: bytes, fmt: str, limits: dict, timeout: float, job_dir: str):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        res_r, res_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        protected = [1, self.zygote.pid, os.getpid(), os.getpgid(0)]  # what the job must not reach
        pid = os.fork()
        if pid == 0:  # child
            try:
                for fd in (out_r, err_r, res_r, self.chan_in, self.chan_out):
                    os.close(fd)
                try:
                    _child_setup(job_dir, out_w, err_w, res_w, limits, timeout, protected)
                except BaseException:
                    traceback.print_exc()
                    os._exit(SETUP_FAILED)
                run_child(code, fmt, limits, res_w)
            finally:
                os._exit(70)
        for fd in (out_w, err_w, res_w):
            os.close(fd)
        out, err = Capped(limits["output_bytes"]), Capped(limits["output_bytes"])
        result = Capped(limits["max_png_bytes"] + MAX_HEADER)
        sinks = {out_r: out, err_r: err, res_r: result}
        sel = selectors.DefaultSelector()
        for fd in sinks:
            os.set_blocking(fd, False)
            sel.register(fd, selectors.EVENT_READ)
        pidfd = _pidfd(pid)  # readable when the child exits: no polling delay after the last pipe closes
        if pidfd is not None:
            sel.register(pidfd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        exit_status, timed_out, ooms, over = None, False, oom_kills(), ""
        watch = Watchdog(limits)
        try:
            while exit_status is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in sel.select(min(remaining, WATCH_EVERY_S)):
                    if key.fd in sinks:
                        _drain(key.fd, sinks[key.fd], sel)
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    exit_status = status
                elif watch.due():
                    over = watch.check()
                    if over:
                        break
            reap_all(pid)
            if exit_status is None:
                try:
                    _, exit_status = os.waitpid(pid, 0)
                except ChildProcessError:
                    exit_status = 0
            for fd in list(sinks):  # what the child wrote before it died
                _drain(fd, sinks[fd], sel, final=True)
        finally:
            sel.close()
            for fd in sinks:
                os.close(fd)
            if pidfd is not None:
                os.close(pidfd)
        header = {"stdout": out.text(), "stderr": err.text()}
        if timed_out:
            return dict(
                header,
                status="timeout",
                error=f"the program ran past its {timeout:g} s deadline and was killed",
            ), b""
        if over:
            return dict(header, status="oom" if "memory" in over else "error", error=over), b""
        parsed = _parse_result(bytes(result.head + result.tail) if not result.dropped else b"")
        if parsed is not None and exit_status == 0:
            res, png = parsed
            return dict(
                header,
                status=res.get("status", "error"),
                error=res.get("error", ""),
                captured=res.get("captured", ""),
                text_boxes=sane_boxes(res.get("text_boxes")),
            ), png
        death = _death_reason(exit_status, timeout, oom_kills() > ooms)
        if death["status"] == "error":  # an abrupt exit, a signal: the job may have left anything behind
            death["doubt"] = f"the job ended abnormally: {death['error']}"[:300]
        return dict(header, **death), b""


class Zygote:
    """The worker's long-lived process: it imported the renderers and never holds a byte of any job.

    Serves by forking one Runner per job (the runner reads the job; the zygote does not), waiting for it, and
    checking that nothing about itself changed (limits, nice, scheduling, affinity, I/O priority, OOM score)
    and, as PID 1, that no process is left. Any doubt ends the zygote: the host sees the worker gone at its
    next ping and starts a fresh one.
    """

    def __init__(self, chan_in: int, chan_out: int, jobs_root: str, reset: bool = False) -> None:
        self.chan_in, self.chan_out, self.jobs_root = chan_in, chan_out, jobs_root
        self.count, self.reset, self.pid = 0, reset, os.getpid()
        # Read-only binds the sandbox placed inside the scratch folders (bubblewrap binds the host's Python
        # prefix at its own path, which may lie under /tmp): the wipe keeps them and the folders leading there.
        self.keep = mount_points_below((tempfile.gettempdir(), "/dev/shm")) if reset else set()
        self.state = process_state(0)

    def changed(self, pid: int | None = None) -> str:
        """'' when the zygote's settings are as they were at start-up, else a reason (from any process)."""
        now = process_state(self.pid if pid is None else pid)
        what = state_changes(self.state, now)
        return f"the worker's own settings changed ({what})" if what else ""

    def serve(self, max_jobs: int = 0) -> None:
        while True:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # the job's orphans come to the runner, not to us
                    code = Runner(self).serve_one()
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            status = _wait_for(pid)
            if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != EXIT_JOB:
                if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == EXIT_STOP):
                    print(f"coco worker: a runner ended with status {status}; stopping", file=sys.stderr)
                return
            self.count += 1
            if max_jobs and self.count >= max_jobs:
                return
            why = self.changed(0) or self._leftovers()
            if why:
                print(f"coco worker: {why}; stopping", file=sys.stderr)
                return

    def _leftovers(self) -> str:
        """As PID 1: whether any process outlived the runner (pids only: nothing a job wrote is read here)."""
        if os.getpid() != 1:
            return ""
        left = [e for e in os.listdir("/proc") if e.isdigit() and e != "1"]
        return f"{len(left)} process(es) outlived the runner" if left else ""


def _wait_for(pid: int) -> int:
    """Wait for `pid`, reaping any other child (orphans reparented to PID 1) on the way; its wait status."""
    while True:
        try:
            done, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if done == pid:
            return status


class Watchdog:
    """Limits the worker enforces on the job as a whole, from outside it, at every check (every 50 ms):
    private memory (USS, summed over the job's processes) and the number of processes. Off unless the job's
    limits set job_memory_mb / max_procs (a sandbox without cgroups: bubblewrap). The job's processes are
    all but the worker when it is PID 1 of its namespace, else the worker's children."""

    def __init__(self, limits: dict) -> None:
        self.memory = int(limits.get("job_memory_mb") or 0) << 20
        self.procs = int(limits.get("max_procs") or 0)
        self.next = time.monotonic() + WATCH_EVERY_S

    def due(self) -> bool:
        if not (self.memory or self.procs) or time.monotonic() < self.next:
            return False
        self.next = time.monotonic() + WATCH_EVERY_S
        return True

    def check(self) -> str:
        """Why the job must be killed now ('' when it may go on)."""
        pids = job_processes()
        if self.procs and len(pids) > self.procs:
            return f"the program started more than {self.procs} processes and was killed"
        if self.memory:
            used = sum(private_bytes(pid) for pid in pids)
            if used > self.memory:
                return (
                    f"the program was killed: its processes held {used >> 20} MB, over the "
                    f"{self.memory >> 20} MB memory limit"
                )
        return ""


def private_bytes(pid: int) -> int:
    """Memory only this process holds (private clean + dirty pages, swap); 0 once it is gone."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith((b"Private_Clean:", b"Private_Dirty:", b"Swap:")):
                    total += int(line.split()[1]) << 10
    except (OSError, ValueError, IndexError):
        return 0
    return total


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def mount_points_below(folders: tuple[str, ...]) -> set[str]:
    """Mount points strictly inside any of `folders`, from /proc/self/mountinfo (octal escapes decoded)."""
    found: set[str] = set()
    prefixes = tuple(folder.rstrip("/") + "/" for folder in folders)
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
            for line in table:
                fields = line.split()
                if len(fields) > 4:
                    point = _unescape_mount(fields[4])
                    if point.startswith(prefixes):
                        found.add(point.rstrip("/"))
    except OSError:
        pass
    return found


def _unescape_mount(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def wipe_folder(folder: str, keep: set[str]) -> None:
    """Empty `folder`, except the mount points in `keep` and the folders that lead to them (emptied around)."""
    for entry in os.listdir(folder):
        path = os.path.join(folder, entry)
        if path in keep:
            continue
        if any(k.startswith(path + "/") for k in keep) and stat.S_ISDIR(os.lstat(path).st_mode):
            os.chmod(path, 0o755)
            wipe_folder(path, keep)
            continue
        remove_tree(path)


def remove_tree(path: str) -> None:
    """Delete a file, link or folder, first making folders the job locked (chmod 000) ours again."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(path)
        return
    os.chmod(path, 0o700)
    for entry in os.listdir(path):
        remove_tree(os.path.join(path, entry))
    os.rmdir(path)


def job_processes() -> list[int]:
    """The job's processes, seen from its runner: every process but the zygote and the runner when the zygote
    is PID 1 of the namespace (Docker, bubblewrap --as-pid-1), else the runner's children (it is a subreaper:
    the job's orphans become its children)."""
    me = os.getpid()
    if os.getppid() == 1:
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in (1, me)]
    return children_of(me)


def posix_mqueues() -> bool:
    """Whether any POSIX message queue exists in this IPC namespace (they outlive processes)."""
    try:
        return bool(os.listdir("/dev/mqueue"))
    except OSError:
        return False


def sysv_ipc_objects() -> bool:
    """Whether any System V shared memory, semaphore or message queue exists (they outlive processes)."""
    for name in ("shm", "sem", "msg"):
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                if len(f.read().splitlines()) > 1:
                    return True
        except OSError:
            continue
    return False


def _drain(fd: int, sink: Capped, sel, final: bool = False) -> None:
    for _ in range(64 if final else 16):
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(fd)
            return
        sink.add(data)


def _parse_result(raw: bytes) -> tuple[dict, bytes] | None:
    if len(raw) < 4:
        return None
    (size,) = struct.unpack(">I", raw[:4])
    try:
        header = json.loads(raw[4 : 4 + size])
        n = int(header.get("payload_len", 0))
    except (ValueError, AttributeError):
        return None
    payload = raw[4 + size : 4 + size + n]
    return (header, payload) if len(payload) == n else None


def oom_kills() -> int:
    """OOM kills counted by our memory cgroup (v1 or v2); 0 when unknown."""
    for path, key in (
        ("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"),
        ("/sys/fs/cgroup/memory.events", "oom_kill"),
    ):
        try:
            with open(path) as f:
                for line in f:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def _death_reason(exit_status: int | None, timeout: float, oom_seen: bool) -> dict:
    if oom_seen:
        return {"status": "oom", "error": "the program was killed: it reached the sandbox memory limit"}
    if exit_status is not None and os.WIFSIGNALED(exit_status):
        sig = os.WTERMSIG(exit_status)
        if sig == signal.SIGKILL:
            return {
                "status": "oom",
                "error": "the program was killed by SIGKILL (most likely the memory limit)",
            }
        if sig == signal.SIGXCPU:
            return {"status": "timeout", "error": f"the program used more than {int(timeout) + 1} s of CPU"}
        return {"status": "error", "error": f"the program died from signal {signal.Signals(sig).name}"}
    code = os.WEXITSTATUS(exit_status) if exit_status is not None else -1
    if code == SETUP_FAILED:
        return {"status": "error", "error": "the sandbox could not set the job up (its stderr says why)"}
    return {
        "status": "error",
        "error": f"the program exited abruptly (exit code {code}, e.g. os._exit) before its picture was captured",
    }


# ---------------------------------------------------------------- start-up


def setup_matplotlib(full_warm_up: bool = True) -> None:
    """Writable copy of the baked font cache; CJK glyph fallback; warm font and text caches before any fork."""
    baked = os.environ.get("MPLCONFIGDIR")
    seed = os.environ.pop("COCO_MPL_SEED", "")  # a font cache to start from (process sandbox)
    if not seed and baked and os.path.isdir(baked) and not os.access(baked, os.W_OK):
        seed = baked  # the image's cache sits on the read-only root: matplotlib needs a writable copy
    if seed and os.path.isdir(seed):
        copy = os.path.join(tempfile.gettempdir(), "mplconfig")
        shutil.copytree(seed, copy, dirs_exist_ok=True)
        os.environ["MPLCONFIGDIR"] = copy
        global MPL_SEED
        MPL_SEED = seed
    import dataclasses

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.font_manager as fm
    import matplotlib.pyplot as plt

    plt.switch_backend("agg")  # resolve the backend now, not in every child
    entries = {f.name: f for f in fm.fontManager.ttflist}
    cjk = next((entries[name] for name in CJK_FONTS if name in entries), None)
    if cjk is not None:
        # Programs written for Windows/macOS ask for these by name: serve them the CJK font we have.
        for alias in CJK_ALIASES:
            if alias not in entries:
                fm.fontManager.ttflist.append(dataclasses.replace(cjk, name=alias))
        # Glyph fallback (matplotlib >= 3.6): Latin from the default font, CJK from the CJK font.
        for rc in (matplotlib.rcParams, matplotlib.rcParamsDefault):
            rc["font.family"] = list(rc["font.family"]) + [cjk.name]
        _cjk_last_resort(fm, cjk.fname)
    if full_warm_up:
        _warm_up(plt)
    else:  # one job only: warm what every job needs, nothing it might not
        fig = plt.figure(figsize=(1, 1), dpi=10)
        fig.text(0.1, 0.5, "Ag 1.0 中文")
        fig.canvas.draw()
        plt.close(fig)
        _drop_open_fonts()


def _cjk_last_resort(fm, path: str) -> None:
    """Put the CJK font at the end of every font list matplotlib resolves, so CJK text keeps its glyphs even in
    programs that set their own family ("serif", "monospace", ``font.family = "sans-serif"``): a generic family
    resolves to one font, and without this those programs draw tofu boxes."""
    manager = fm.fontManager
    find = getattr(manager, "_find_fonts_by_props", None)  # matplotlib >= 3.6 (the image has 3.6.3)
    if find is None:
        return

    def find_with_cjk(prop, *args, **kwargs):
        paths = find(prop, *args, **kwargs)
        return paths if path in paths else [*paths, path]

    manager._find_fonts_by_props = find_with_cjk


def _warm_up(plt) -> None:
    """Draw once what most charts use (fonts, mathtext, legends, colour maps, 3-D axes, PNG and PDF), so each
    forked job finds these caches filled instead of filling them again and losing them when it exits."""
    fig = plt.figure(figsize=(4, 3), dpi=40)
    ax = fig.add_subplot(1, 2, 1)
    ax.plot([0, 1], [0, 1], "o-", label="line")
    ax.bar([0, 1], [1, 2], label="bar", hatch="//")
    ax.scatter([0, 1], [1, 0], c=[0, 1], cmap="viridis")
    ax.set_title("Ag 1.0 中文", fontweight="bold", fontsize=14)
    ax.set_xlabel(r"$\alpha^2_i$ (%)", fontstyle="italic")
    ax.legend(title="Legend")
    ax.grid(True)
    ax3 = fig.add_subplot(1, 2, 2, projection="3d")
    ax3.plot([0, 1], [0, 1], [0, 1])
    fig.tight_layout()
    for fmt in ("png", "pdf"):  # most programs also save a PDF (ChartMimic: all): load that backend too
        fig.savefig(io.BytesIO(), format=fmt)
    plt.close(fig)
    _drop_open_fonts()


def _drop_open_fonts() -> None:
    """Free every FT2Font the warm-up left cached: each holds an open font file, and a forked job closes all
    inherited fds, so a cached font would read from a closed (or the job's own) fd and crash the job."""
    import gc

    import matplotlib.font_manager as fm
    import matplotlib.mathtext as mathtext

    fm._get_font.cache_clear()
    parse = getattr(mathtext.MathTextParser, "_parse_cached", None)
    if parse is not None and hasattr(parse, "cache_clear"):
        parse.cache_clear()
    gc.collect()


def preload(names: list[str], full_warm_up: bool = True) -> list[str]:
    """Import renderers before any fork so every job starts warm; missing ones are skipped."""
    done = []
    for name in names:
        try:
            if name == "matplotlib":
                setup_matplotlib(full_warm_up)
            else:
                __import__(name)
            done.append(name)
        except Exception as exc:  # a missing renderer only fails the jobs that use it
            print(f"coco worker: cannot preload {name}: {exc}", file=sys.stderr)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-jobs", type=int, default=0, help="exit after this many jobs (0: until EOF)")
    parser.add_argument("--oneshot", action="store_true", help="same as --max-jobs 1")
    parser.add_argument("--jobs-root", default=None, help="where job dirs are made (default: $TMPDIR/jobs)")
    parser.add_argument(
        "--reset", action="store_true", help="after each job: wipe /tmp and /dev/shm, check for leftovers"
    )
    parser.add_argument("--preload", default="numpy,PIL.Image,matplotlib", help="comma-separated imports")
    args = parser.parse_args(argv)

    _prctl(PR_SET_DUMPABLE, 0)  # jobs (same uid) cannot open /proc/<worker>/fd/* or ptrace us
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphaned descendants of a job come back to us to be killed
    for name in WORKER_IGNORES:  # a job cannot interrupt or terminate us (KeyboardInterrupt from kill -INT 1)
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    chan_in, chan_out = os.dup(0), os.dup(1)  # os.dup: not inherited by exec'd programs
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints of the worker or a library go to stderr, never into the channel
    os.close(devnull)
    jobs_root = args.jobs_root or os.path.join(tempfile.gettempdir(), "jobs")
    os.makedirs(jobs_root, mode=0o700, exist_ok=True)

    single = args.oneshot or args.max_jobs == 1
    loaded = preload([n for n in args.preload.split(",") if n], full_warm_up=not single)
    version = ".".join(map(str, sys.version_info[:3]))
    write_frame(chan_out, {"type": "ready", "pid": os.getpid(), "python": version, "preloaded": loaded})
    Zygote(chan_in, chan_out, jobs_root, reset=args.reset).serve(
        max_jobs=1 if args.oneshot else args.max_jobs
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
