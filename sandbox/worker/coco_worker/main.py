"""coco sandbox worker: runs drawing programs, one forked process per job, and returns PNG bytes.

Runs inside the sandbox (container, bubblewrap or a plain subprocess) with the standard library and the
renderers only. Talks frames (coco_worker/protocol.py) on a dedicated channel: the original stdin/stdout, moved
to private fds at start-up (fd 0/1 then point at /dev/null and stderr), so whatever a program prints is data,
never protocol. The process started here becomes the zygote (coco_worker/zygote.py): it preloads the
renderers, says it is ready, and serves until EOF, "exit" or --max-jobs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile

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

from coco_worker import identity  # noqa: E402
from coco_worker.hygiene import PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE, WORKER_IGNORES, prctl  # noqa: E402
from coco_worker.protocol import READY, write_frame  # noqa: E402
from coco_worker.renderers import RENDERERS  # noqa: E402
from coco_worker.zygote import Zygote  # noqa: E402

DEFAULT_PRELOAD = "numpy,pil,matplotlib"  # renderer names or module names; svg's cairosvg loads on first use


def preload(names: list[str], full_warm_up: bool = True) -> list[str]:
    """Import renderers (by format name) or modules before any fork so every job starts warm; missing ones
    are skipped (a missing renderer only fails the jobs that use it)."""
    done = []
    for name in names:
        try:
            if name in RENDERERS:
                RENDERERS[name].preload(full_warm_up)
            else:
                __import__(name)
            done.append(name)
        except Exception as exc:
            print(f"coco worker: cannot preload {name}: {exc}", file=sys.stderr)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coco_worker", description=__doc__.splitlines()[0])
    parser.add_argument("--max-jobs", type=int, default=0, help="exit after this many jobs (0: until EOF)")
    parser.add_argument("--oneshot", action="store_true", help="same as --max-jobs 1")
    parser.add_argument("--jobs-root", default=None, help="where job dirs are made (default: $TMPDIR/jobs)")
    parser.add_argument(
        "--reset", action="store_true", help="after each job: wipe /tmp and /dev/shm, check for leftovers"
    )
    parser.add_argument("--preload", default=DEFAULT_PRELOAD, help="comma-separated renderers or modules")
    parser.add_argument("--job-uid", type=int, default=None, help="run each job as this uid (worker: root)")
    parser.add_argument("--service-uid", type=int, default=None, help="run warm services as this uid")
    args = parser.parse_args(argv)
    identity.configure(args.job_uid, args.service_uid)

    prctl(PR_SET_DUMPABLE, 0)  # jobs (same uid) cannot open /proc/<worker>/fd/* or ptrace us
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphaned descendants come back to us to be killed
    for name in WORKER_IGNORES:  # a job cannot interrupt or terminate us (KeyboardInterrupt from kill -INT 1)
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    chan_in, chan_out = os.dup(0), os.dup(1)  # os.dup: not inherited by exec'd programs
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stray prints of the worker or a library go to stderr, never into the channel
    os.close(devnull)
    jobs_root = args.jobs_root or os.path.join(tempfile.gettempdir(), "jobs")
    identity.make_jobs_root(jobs_root)

    single = args.oneshot or args.max_jobs == 1
    loaded = preload([n for n in args.preload.split(",") if n], full_warm_up=not single)
    version = ".".join(map(str, sys.version_info[:3]))
    ready = {
        "type": READY,
        "pid": os.getpid(),
        "python": version,
        "preloaded": loaded,
        "formats": list(RENDERERS),
    }
    write_frame(chan_out, ready)
    Zygote(chan_in, chan_out, jobs_root, reset=args.reset).serve(
        max_jobs=1 if args.oneshot else args.max_jobs
    )
    return 0
