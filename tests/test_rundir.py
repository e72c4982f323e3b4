"""coco_agent/rundir.py is the one place that spells run-directory and batch-folder file names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from coco_agent import formats, rundir

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "coco_agent").rglob("*.py")), *sorted((ROOT / "graphs").glob("*.py"))]
NAMES = sorted({*rundir.RUN_FILES, *rundir.ATTEMPT_FILES, *rundir.BATCH_FILES, *formats.code_files()})
SPELLED = re.compile("|".join(rf"(?<![\w.]){re.escape(name)}(?!\w)" for name in NAMES))
# where a name may be spelled: the module itself, and the program name of each format (its record owns it)
EXEMPT = {ROOT / "coco_agent" / "rundir.py"}
FORMAT_RECORDS = ROOT / "coco_agent" / "formats"


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (module, class, function)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def exempt_constants(tree: ast.AST, path: Path) -> set[int]:
    """The `code_file=` of a format record (coco_agent/formats/<name>.py) spells its program's name."""
    found = set()
    if path.parent != FORMAT_RECORDS:
        return found
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "code_file":
            found |= {id(c) for c in ast.walk(node.value) if isinstance(c, ast.Constant)}
    return found


def spellings(source: str, path: Path) -> list[str]:
    """``line: text`` of every string literal (not a docstring; comments are not in the tree) that spells a run
    file's name, or that names the attempts folder in a path (``run / "attempts"``, ``"attempts/01"``)."""
    tree = ast.parse(source)
    skip = docstrings(tree) | exempt_constants(tree, path)
    path_parts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            path_parts |= {id(node.left), id(node.right)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in skip:
            continue
        text = node.value
        folder = text.startswith(f"{rundir.ATTEMPTS_DIR}/") or (
            text == rundir.ATTEMPTS_DIR and id(node) in path_parts
        )
        if SPELLED.search(text) or folder:
            found.append((node.lineno, f"{node.lineno}: {text[:80]!r}"))
    return [line for _, line in sorted(found)]


def test_only_the_run_directory_module_spells_run_file_names():
    offenders = {}
    for path in SOURCES:
        if path in EXEMPT:
            continue
        found = spellings(path.read_text(encoding="utf-8"), path)
        if found:
            offenders[str(path.relative_to(ROOT))] = found
    assert not offenders, f"use the names of coco_agent/rundir.py instead: {offenders}"


def test_the_scan_finds_what_it_looks_for():
    """The check above is not vacuous: literals, f-string parts and the attempts folder are found; docstrings,
    state keys and the run-directory module's own names are not."""
    here = ROOT / "coco_agent" / "example.py"
    source = '''
"""Writes result.json (a docstring may say so)."""
def f(run, state):
    """And final.png here."""
    a = run / "result.json"
    b = f"{run}/summary.csv done"
    c = run / "attempts" / "01"
    d = state["attempts"]
    e = "see crash.txt"
    g = "attempts/02/draft.png"
'''
    found = spellings(source, here)
    assert [line.split(":")[0] for line in found] == ["5", "6", "7", "9", "10"]
    assert spellings((ROOT / "coco_agent" / "rundir.py").read_text(), here)  # it does spell them (exempt)
    assert not spellings('F = DraftFormat(code_file="code.svg")\n', FORMAT_RECORDS / "svg.py")
    assert spellings('F = DraftFormat(suffix="code.svg")\n', FORMAT_RECORDS / "svg.py")
    assert spellings('F = DraftFormat(code_file="code.svg")\n', ROOT / "coco_agent/nodes/write_code.py")


def test_every_named_file_is_distinct_and_reserved_ids_follow_the_batch_files():
    from coco_agent.batch.prompts_file import RESERVED_IDS

    names = [*rundir.RUN_FILES, *rundir.ATTEMPT_FILES, *rundir.BATCH_FILES]
    assert len(names) == len(set(names))
    assert set(rundir.BATCH_FILES) == RESERVED_IDS
    for name in formats.code_files():  # a format's program is code.<suffix> (code.vl.json too): found by it
        assert name.partition(".")[0] == rundir.CODE_STEM and name not in rundir.ATTEMPT_FILES


def test_code_file_finds_every_formats_program_and_not_the_original(tmp_path):
    for name in formats.code_files():
        folder = tmp_path / name
        folder.mkdir()
        (folder / rundir.ORIGINAL_CODE_FILE).write_text("x = 1\n")
        (folder / name).write_text("x = 2\n")
        assert rundir.code_file(folder) == folder / name


def test_attempt_folders_and_programs(tmp_path):
    assert rundir.attempt_path(tmp_path, 3) == tmp_path / "attempts" / "03"
    assert not (tmp_path / "attempts").exists()
    for rnd in (10, 2, 1):
        rundir.attempt_dir(tmp_path, rnd)
    (tmp_path / "attempts" / "notes").mkdir()
    assert [rnd for rnd, _ in rundir.attempt_dirs(tmp_path)] == [1, 2, 10]
    one = rundir.attempt_path(tmp_path, 1)
    assert rundir.code_file(one) is None
    (one / "code.orig.py").write_text("x = 1\n")
    assert rundir.code_file(one) is None  # the model's original is not the program
    (one / "code.svg").write_text("<svg/>")
    assert rundir.code_file(one) == one / "code.svg"
    assert list(rundir.attempt_dirs(tmp_path / "nothing")) == []
