"""The names of every file and folder in a run directory and a batch folder: the one place that spells them.

A run directory (`coco generate -o DIR`, or OUT/<id>/ of a batch)::

    result.json  run.json  trace.jsonl  calls.jsonl  checkpoints.sqlite  refined.png  final.png  final.svg
    final.html (HTML drafts)
    crash.txt  review.json  run.lock
    replay.json (a run made by `coco replay`: what differs from the recorded run)
    attempts/01/  answer.md  code.py | code.svg | code.html | code.dot | code.vl.json  code.orig.py  draft.png
                  output.txt  critique.json  code_critique.json  error.txt  error.orig.txt  text_boxes.json
                  geometry.json  facts.json
    attempts/01/ with --candidates N > 1: ranking.json  candidates.png  critique.json, and per candidate
                  cand-1/ ... cand-N/ (answer.md, code.py, draft.png, facts.json, ...: an attempt folder each)
    edits/01/     edit.json, changed.png (what was refined again), and replaced/: what the edit replaced
                  (result.json, final.png, ..., and the attempts/NN/ of the rounds after the fork point)

A batch folder (`coco batch -o OUT`): batch.json, summary.json, summary.csv, report.html, .locks/ (the Ray
engine without Postgres), and OUT/<id>/ per prompt. The program's name per format (code.py, code.svg) belongs to the format records (``code_file`` in
coco_agent/formats/); here it is only ``CODE_STEM``, so readers find any format's program.

Names and pure path functions only (no I/O besides ``attempt_dir``'s mkdir and the read-only listings), so any
module (nodes, runner, batch, engines, report) can import this one without pulling anything else in. Reading and
writing the files is ``coco_agent.runs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# a run directory
RESULT_FILE = "result.json"  # the outcome (finalize writes it; a run without it has not finished)
SETTINGS_FILE = "run.json"  # the run's settings, what `coco resume` reads back
TRACE_FILE = "trace.jsonl"  # one line per node run
CHECKPOINT_FILE = "checkpoints.sqlite"  # LangGraph checkpoints
REFINED_FILE = "refined.png"  # what the refiner made (kept or not); layered text: the text composited over it
REFINED_BARE_FILE = "refined_bare.png"  # layered text: what the refiner made of the draft without its text
FINAL_FILE = "final.png"  # the final image
CRASH_FILE = "crash.txt"  # the traceback of an unexpected internal error
FINAL_SVG_FILE = "final.svg"  # the editable deliverable: final.png as background, the program's text live
FINAL_HTML_FILE = "final.html"  # HTML drafts: the same as an editable page (final.png behind live HTML text)
REVIEW_FILE = "review.json"  # the pending review of a paused run (present only while it waits)
LOCK_FILE = "run.lock"  # the advisory lock of whoever is continuing the run now (coco_agent/runlock.py)
CALLS_FILE = "calls.jsonl"  # one line per model call: the ledger record and the call's output (replay)
REPLAY_FILE = "replay.json"  # in a run made by `coco replay`: the differences from the recorded run
ATTEMPTS_DIR = "attempts"  # attempts/NN/ per round
EDITS_DIR = "edits"  # edits/NN/ per `coco edit` of the run

# an attempt folder, attempts/NN/
ANSWER_FILE = "answer.md"  # the code writer's raw answer
CODE_STEM = (
    "code"  # the program: code.<suffix of its format> (see coco_agent/formats/: each record's code_file)
)
ORIGINAL_CODE_FILE = "code.orig.py"  # the model's program, when the repair step changed it
DRAFT_FILE = "draft.png"  # the sandbox's picture
OUTPUT_FILE = "output.txt"  # the program's stdout/stderr
CRITIQUE_FILE = "critique.json"  # the critic's verdict
ERROR_FILE = "error.txt"  # why the round failed
ORIGINAL_ERROR_FILE = "error.orig.txt"  # a sandbox error the repair step fixed
TEXT_BOXES_FILE = "text_boxes.json"  # where the program drew text (the refiner keeps those pixels)
FACTS_FILE = "facts.json"  # what the program drew, as data (bars, lines, wedges, texts), and the facts check
CODE_CRITIQUE_FILE = "code_critique.json"  # --critique split: the code critic's map of problems to lines
RANKING_FILE = "ranking.json"  # --candidates: the deterministic ranking of the round's candidates
CANDIDATES_IMAGE = (
    "candidates.png"  # --candidates: the shortlist side by side, labelled, as the critic saw it
)
CANDIDATE_PREFIX = "cand-"  # attempts/NN/cand-K/: candidate K of round NN (an attempt folder of its own)
GEOMETRY_FILE = "geometry.json"  # the drawn strings the renderer measured and the geometry checks' problems
BARE_DRAFT_FILE = "draft_bare.png"  # layered text: the same program drawn with its text hidden
TEXT_LAYER_FILE = "text_layer.png"  # layered text: the draft's text alone (RGBA), composited after refinement

# an edit folder, edits/NN/
EDIT_FILE = "edit.json"  # what the edit did: from which round and checkpoint, the new branch, the settings
REPLACED_DIR = "replaced"  # what the edit moved out of the run's current line (old outcome, later attempts)
CHANGED_MASK_FILE = (
    "changed.png"  # where the new draft differs from the old (grown): the pixels refined again
)

# a batch folder
BATCH_FILE = "batch.json"  # which prompts file and settings made it
SUMMARY_JSON = "summary.json"  # a row per prompt and the aggregates
SUMMARY_CSV = "summary.csv"  # the same rows as CSV
REPORT_FILE = "report.html"  # `coco report` (also written into a run directory)
LOCKS_DIR = ".locks"  # the Ray engine's per-prompt lock files, when no Postgres holds the locks

RUN_FILES = (
    RESULT_FILE,
    SETTINGS_FILE,
    TRACE_FILE,
    CHECKPOINT_FILE,
    REFINED_FILE,
    REFINED_BARE_FILE,
    FINAL_FILE,
    FINAL_SVG_FILE,
    FINAL_HTML_FILE,
    CRASH_FILE,
    REVIEW_FILE,
    LOCK_FILE,
    CALLS_FILE,
    REPLAY_FILE,
)
ATTEMPT_FILES = (
    ANSWER_FILE,
    ORIGINAL_CODE_FILE,
    DRAFT_FILE,
    OUTPUT_FILE,
    CRITIQUE_FILE,
    ERROR_FILE,
    ORIGINAL_ERROR_FILE,
    TEXT_BOXES_FILE,
    GEOMETRY_FILE,
    FACTS_FILE,
    CODE_CRITIQUE_FILE,
    RANKING_FILE,
    CANDIDATES_IMAGE,
    BARE_DRAFT_FILE,
    TEXT_LAYER_FILE,
)
EDIT_FILES = (EDIT_FILE, CHANGED_MASK_FILE)
BATCH_FILES = (
    BATCH_FILE,
    SUMMARY_JSON,
    SUMMARY_CSV,
    REPORT_FILE,
    LOCKS_DIR,
)  # no prompt id may take these names


def result_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / RESULT_FILE


def settings_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / SETTINGS_FILE


def attempt_path(run_dir: str | Path, rnd: int) -> Path:
    """attempts/NN of round ``rnd`` (not created)."""
    return Path(run_dir) / ATTEMPTS_DIR / f"{rnd:02d}"


def attempt_dir(run_dir: str | Path, rnd: int) -> Path:
    """attempts/NN of round ``rnd``, created if needed (for the nodes that write into it)."""
    path = attempt_path(run_dir, rnd)
    path.mkdir(parents=True, exist_ok=True)
    return path


def edit_path(run_dir: str | Path, number: int) -> Path:
    """edits/NN of the run's edit number ``number`` (not created)."""
    return Path(run_dir) / EDITS_DIR / f"{number:02d}"


def candidate_path(run_dir: str | Path, rnd: int, cand: int) -> Path:
    """attempts/NN/cand-K of candidate ``cand`` of round ``rnd`` (not created)."""
    return attempt_path(run_dir, rnd) / f"{CANDIDATE_PREFIX}{cand}"


def attempt_folder(run_dir: str | Path, rnd: int, cand: int | None = None) -> Path:
    """The folder an attempt's files go to, created: attempts/NN, or attempts/NN/cand-K for a candidate."""
    path = candidate_path(run_dir, rnd, cand) if cand else attempt_path(run_dir, rnd)
    path.mkdir(parents=True, exist_ok=True)
    return path


def candidate_dirs(attempt_folder: str | Path) -> Iterator[tuple[int, Path]]:
    """The candidate folders of one attempt folder, in candidate order, with their numbers."""
    found = []
    for folder in Path(attempt_folder).glob(f"{CANDIDATE_PREFIX}*"):
        number = folder.name.removeprefix(CANDIDATE_PREFIX)
        if folder.is_dir() and number.isdigit():
            found.append((int(number), folder))
    yield from sorted(found)


def attempt_dirs(run_dir: str | Path) -> Iterator[tuple[int, Path]]:
    """The attempt folders that exist, in round order, with their round numbers."""
    found = []
    for folder in (Path(run_dir) / ATTEMPTS_DIR).glob("[0-9][0-9]*"):
        if folder.is_dir() and folder.name.isdigit():
            found.append((int(folder.name), folder))
    yield from sorted(found)


def code_file(attempt_folder: str | Path) -> Path | None:
    """The program of an attempt (code.py, code.svg, ...: whatever its format named it), None when none."""
    for path in sorted(Path(attempt_folder).glob(f"{CODE_STEM}.*")):  # code.py, code.svg, code.vl.json
        if path.is_file() and path.name.partition(".")[0] == CODE_STEM and path.name not in ATTEMPT_FILES:
            return path
    return None
