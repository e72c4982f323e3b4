"""`coco render` and `coco sandbox status` through the real command line entry point."""

from __future__ import annotations

import json

import pytest

from coco_agent.cli import main

BARS = "import matplotlib.pyplot as plt\nplt.bar(['Q1', 'Q2'], [100, 120])\nplt.savefig('sales.pdf')\n"


def test_render_writes_png(tmp_path, capsys):
    src, out = tmp_path / "bars.py", tmp_path / "out" / "bars.png"
    src.write_text(BARS)
    assert main(["render", str(src), "-o", str(out), "--sandbox", "process", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "ok" and report["sandbox"] == "process" and report["seconds"] > 0
    assert out.read_bytes().startswith(b"\x89PNG")


def test_render_svg_auto_format(tmp_path, capsys):
    src, out = tmp_path / "box.svg", tmp_path / "box.png"
    src.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="20"/></svg>'
    )
    pytest.importorskip("cairosvg")
    assert main(["render", str(src), "-o", str(out), "--sandbox", "process", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "svg"


@pytest.mark.parametrize(("code", "status"), [("1 / 0\n", "error"), ("x = 1\n", "no_image")])
def test_render_failure_exit_code(tmp_path, capsys, code, status):
    src, out = tmp_path / "bad.py", tmp_path / "bad.png"
    src.write_text(code)
    assert main(["render", str(src), "-o", str(out), "--sandbox", "process", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == status and report["error"]
    assert not out.exists()


def test_render_timeout(tmp_path, capsys):
    src, out = tmp_path / "loop.py", tmp_path / "loop.png"
    src.write_text("while True:\n    pass\n")
    assert main(["render", str(src), "-o", str(out), "--sandbox", "process", "--timeout", "1", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "timeout"


def test_render_missing_file(tmp_path, capsys):
    assert main(["render", str(tmp_path / "nope.py"), "-o", str(tmp_path / "x.png"), "--json"]) == 2
    assert "cannot read" in json.loads(capsys.readouterr().out)["error"]


@pytest.mark.docker
def test_render_in_docker(tmp_path, capsys, docker_sandbox):
    src, out = tmp_path / "bars.py", tmp_path / "bars.png"
    src.write_text(BARS)
    assert main(["render", str(src), "-o", str(out), "--sandbox", "docker", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sandbox"] == "docker"
    assert main(["sandbox", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["engine"] and status["present"]


def test_written_files_get_the_usual_mode(tmp_path):
    """Atomic writes (mkstemp underneath) still give files the mode a plain open() would: 0o666 less umask."""
    import os
    import stat

    from coco_agent.cli.render import write_atomic
    from coco_agent.runs import write_json

    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "draft.png", b"x")
        write_json(tmp_path / "result.json", {"a": 1})
    finally:
        os.umask(umask)
    for name in ("draft.png", "result.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
