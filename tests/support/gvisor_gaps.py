"""Attack and cross-job tests that FAIL under gVisor (`--sandbox gvisor`) today: each a known gap, marked a strict
expected failure (it fails the suite the day it passes, so the mark must then go), with what was seen.

Found when the gVisor tiers first ran in full (issue #12). They are real gaps of the gVisor backend, not of the
tests, unless said otherwise; the runc pool passes all of them."""

from __future__ import annotations

GAPS: dict[str, str] = {
    "tests/sandbox/test_attacks.py::test_background_processes_die_with_the_job[gvisor]": (
        "FLAKY: once (CI run on a loaded 2-core machine) the worker ended without a result (eof, exit status 2) "
        "under gVisor; it passes at other times"
    ),
    "tests/sandbox/test_attacks.py::test_fake_frames_are_data[gvisor]": (
        "SECURITY: under gVisor a job opens the worker's pipes through /proc/<worker>/fd (PR_SET_DUMPABLE does not "
        "hide them) and its forged 'ok' frame is taken as the result"
    ),
    "tests/sandbox/test_attacks.py::test_inode_exhaustion[gvisor]": (
        "gVisor's tmpfs ignores the nr_inodes cap: the job made all 20000 files"
    ),
    "tests/sandbox/test_attacks.py::test_fork_bomb_bounded[gvisor]": (
        "bounded, but as 'oom' (the container hit its memory limit), not 'no_image': gVisor's own per-thread "
        "memory counts against the cgroup; the test's expected status is runc's"
    ),
    "tests/sandbox/test_attacks.py::test_worker_survives_its_job[gvisor]": (
        "FLAKY: sometimes the worker ends without a result (eof, exit status 2) under gVisor, sometimes it passes"
    ),
}
FLAKY = {
    "tests/sandbox/test_attacks.py::test_worker_survives_its_job[gvisor]",
    "tests/sandbox/test_attacks.py::test_background_processes_die_with_the_job[gvisor]",
}  # not strict: passes at times
