"""The job's own process: set up (session, folder, fds, rlimits, seccomp filter), run the program, capture
its picture, write one result frame, exit. Everything here runs after the fork, in the job's process."""

from __future__ import annotations

import io
import linecache
import os
import resource
import signal
import sys
import traceback

from coco_worker import facts, hidden_text, identity
from coco_worker.capture import PROGRAM_NAME, Capture, DocumentError
from coco_worker.hygiene import PR_SET_DUMPABLE, PR_SET_PDEATHSIG, WORKER_IGNORES, prctl
from coco_worker.pixels import Rejected
from coco_worker.protocol import write_frame
from coco_worker.renderers import RENDERERS
from coco_worker.seccomp import install_job_filter
from coco_worker.textboxes import finish_boxes, sane_texts


def run_child(code: bytes, fmt: str, limits: dict, result_fd: int) -> None:
    """Runs in the forked child: execute the program, capture its picture, write one frame, exit."""
    status, error, png, how, boxes, more = "ok", "", b"", "", None, {}
    namespace: dict = {"__name__": "__main__", "__file__": PROGRAM_NAME, "__builtins__": __builtins__}
    renderer = RENDERERS.get(fmt)
    capture = Capture(fmt, limits["max_pixels"], RENDERERS)
    facts.ENABLED[0] = bool(limits.get("facts", True))
    hidden_text.HIDE[0] = bool(limits.get("hide_text", False))
    try:
        if hidden_text.HIDE[0] and not getattr(renderer, "HIDES_TEXT", False):
            raise DocumentError(f"a {fmt} picture cannot be drawn without its text (no layered text)")
        source = code.decode("utf-8")
        document = getattr(renderer, "document", None)
        found = document(source, limits) if document is not None else None
        if found is not None:
            png, how, boxes, *rest = found
            more = rest[0] if rest else {}
        elif getattr(renderer, "DOCUMENT_ONLY", False):
            raise DocumentError(f"the program is not a {fmt} document")
        else:
            capture.install()
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
                png, how, boxes, *rest = found
                more = rest[0] if rest else {}
            else:
                status, error = (
                    "no_image",
                    "the program ran but drew nothing (no figure, image or file to capture)",
                )
    except Rejected as exc:
        status, error = "rejected", str(exc)
    except DocumentError as exc:
        status, error = exc.status, str(exc)
    except MemoryError:
        status, error = "oom", "MemoryError: the program ran out of memory"
    except BaseException:
        status, error = "error", program_traceback()
    if png and len(png) > limits["max_png_bytes"]:
        status, error, png = "rejected", f"PNG of {len(png)} bytes exceeds {limits['max_png_bytes']}", b""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # what the job asked for, read from its limits (the program may have changed the flag), and only for a
    # picture one of the renderers drew (an image file the program wrote itself may show anything)
    hidden = bool(limits.get("hide_text")) and bool(how) and not how.startswith("file:")
    header = {"status": status, "error": error, "captured": how, "text_hidden": hidden}
    if status == "ok":
        try:
            header["text_boxes"] = finish_boxes(boxes, png)
        except Exception:  # a program that broke the measuring: unknown, never a failed job
            header["text_boxes"] = None
        try:
            header["texts"] = sane_texts(more.get("texts")) if isinstance(more, dict) else None
        except Exception:
            header["texts"] = None
        header["facts"] = facts.for_png(png) if facts.ENABLED[0] else None
    write_frame(result_fd, header, png if status == "ok" else b"")
    os._exit(0)


def program_traceback() -> str:
    """Traceback limited to the program's own frames (the worker's are noise to the code writer)."""
    etype, value, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code.co_filename != PROGRAM_NAME:
        tb = tb.tb_next
    lines = traceback.format_exception(etype, value, tb)
    text = "".join(lines)
    return text[-8000:]


def child_setup(
    job_dir: str,
    out_w: int,
    err_w: int,
    keep_fd: int,
    limits: dict,
    timeout: float,
    protected: list[int],
    keep_more: tuple[int, ...] = (),
) -> None:
    """`keep_more`: fds this job keeps besides its result pipe (a document renderer's service pipes)."""
    os.setsid()
    identity.become_job()  # first: a change of uid clears the parent-death signal and the dumpable flag
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 1)  # as after any exec: the worker (no capabilities) may read its smaps
    os.chdir(job_dir)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    low = 3
    for fd in sorted({keep_fd, *keep_more}):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)
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
    if limits.get("nproc") and identity.JOB_UID[0] is not None:  # counts the job's uid alone: its processes
        resource.setrlimit(resource.RLIMIT_NPROC, (int(limits["nproc"]), int(limits["nproc"])))
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
