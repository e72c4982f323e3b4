"""The zygote: the worker's long-lived process (PID 1 of the sandbox), which imported the renderers and never
holds a byte of any job. It forks one runner per job, waits for it, and stops on any doubt: a runner that ended
badly, a change to its own settings, a process left behind."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback

from coco_worker import services
from coco_worker.hygiene import PR_SET_CHILD_SUBREAPER, mount_points_below, prctl
from coco_worker.runner import EXIT_JOB, EXIT_STOP, Runner
from coco_worker.selfcheck import process_state, state_changes


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
        self.keep |= {s.folder for s in services.SERVICES.values() if s.folder}  # a warm browser's profile
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
                    prctl(PR_SET_CHILD_SUBREAPER, 1)  # the job's orphans come to the runner, not to us
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
            why = self.changed(0) or self._leftovers() or _services_gone()
            if why:
                print(f"coco worker: {why}; stopping", file=sys.stderr)
                return

    def _leftovers(self) -> str:
        """As PID 1: whether any process outlived the runner (pids only: nothing a job wrote is read here)."""
        if os.getpid() != 1:
            return ""
        keep = services.tree_pids()
        left = [e for e in os.listdir("/proc") if e.isdigit() and e != "1" and int(e) not in keep]
        return f"{len(left)} process(es) outlived the runner" if left else ""


def _services_gone() -> str:
    """'' while every warm renderer service runs, else which one died (the worker then stops)."""
    gone = [name for name, service in services.SERVICES.items() if not service.alive()]
    return f"the warm {', '.join(gone)} renderer process died" if gone else ""


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
