"""`coco bench sandbox`: the three paths side by side on a few programs, and the figures it derives."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image
from support.paths import CHARTMIMIC

from coco_agent.cli import main
from coco_agent.sandbox.bench import Outcome, ProgramRow, compare_png, summarize


def _png(color: str, size: tuple[int, int] = (20, 10)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def test_summarize_ratios_failures_and_fidelity():
    white, black = _png("white"), _png("black")
    rows = []
    for i, (bare, pool, run) in enumerate([(1.0, 1.2, 6.0), (2.0, 2.2, 8.0), (3.0, 3.0, 9.0)]):
        rows.append(
            ProgramRow(
                f"p{i}.py",
                "matplotlib",
                {
                    "bare": Outcome("ok", bare, png=white),
                    "pool": Outcome("ok", pool, png=white if i < 2 else black),
                    "docker_run": Outcome("ok", run, png=white),
                },
            )
        )
    rows.append(
        ProgramRow(
            "bad.py",
            "matplotlib",
            {n: Outcome("error", 0.1, "NameError") for n in ("bare", "pool", "docker_run")},
        )
    )
    figures = summarize(rows)
    assert figures["rendered"] == 3 and figures["failed"] == 1 and figures["compared"] == 3
    assert figures["p50_ratio"] == 1.1 and figures["p50_docker_run_ratio"] == round(8.0 / 2.2, 3)
    assert figures["fidelity"]["matched"] == 2 and figures["fidelity"]["mismatches"][0]["program"] == "p2.py"
    assert {f["program"] for f in figures["failures"]} == {"bad.py"}


def test_compare_png_sizes():
    assert compare_png(_png("white"), _png("white", (10, 10)))["same_size"] is False
    assert compare_png(_png("white"), _png("white")) == {"same_size": True, "mean_diff": 0.0}


@pytest.mark.docker
def test_bench_sandbox_on_three_programs(tmp_path, capsys, docker_sandbox):
    """One matplotlib, one PIL, one SVG program through bare, pool and docker run."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(sorted(CHARTMIMIC.glob("*.py"))[0], corpus / "a_chart.py")
    (corpus / "b_pil.py").write_text(
        "from PIL import Image, ImageDraw\nimg = Image.new('RGB', (64, 48), 'white')\n"
        "ImageDraw.Draw(img).rectangle([4, 4, 40, 30], fill='red')\n"
    )
    (corpus / "c_box.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="20" height="10"/></svg>'
    )
    assert main(["bench", "sandbox", "--corpus", str(corpus), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["rendered"] == 3 and figures["failed"] == 0, figures["failures"]
    assert figures["compared"] == 3
    for key in ("p50_ratio", "p50_docker_run_ratio"):
        assert figures[key] > 0
    assert figures["fidelity"]["matched"] == 3, figures["fidelity"]


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed (optional)")
def test_bench_sandbox_without_docker(tmp_path, capsys, monkeypatch):
    """The host paths (bare host interpreter, warm bubblewrap, bubblewrap per job) need no Docker engine."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(sorted(CHARTMIMIC.glob("*.py"))[0], corpus / "a_chart.py")
    (corpus / "b_pil.py").write_text("from PIL import Image\nimg = Image.new('RGB', (64, 48), 'red')\n")
    paths = "bare_host,bwrap_warm,bwrap_job"
    assert main(["bench", "sandbox", "--corpus", str(corpus), "--paths", paths, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["rendered"] == 2 and figures["failed"] == 0, figures["failures"]
    assert set(figures["seconds"]) == set(paths.split(","))
    assert figures["p50_bwrap_warm_ratio"] > 0 and figures["p50_bwrap_job_ratio"] > 0
    assert figures["fidelity_bwrap_warm"]["matched"] == 2, figures["fidelity_bwrap_warm"]


def test_typical_corpus_is_twelve_point_line_charts(tmp_path, capsys, monkeypatch):
    """`--corpus typical` generates the anchor workload (12-point line charts) and renders it."""
    from coco_agent.sandbox.bench import typical_corpus

    files = sorted(typical_corpus(tmp_path / "typical").glob("*.py"))
    assert len(files) == 40 and len({f.read_text() for f in files}) == 40
    assert all('"Dec"' in f.read_text() and "ax.plot(months, values" in f.read_text() for f in files)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert (
        main(["bench", "sandbox", "--corpus", "typical", "--limit", "2", "--paths", "bare_host", "--json"])
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert figures["rendered"] == 2 and figures["failed"] == 0, figures["failures"]


@pytest.mark.parametrize(
    ("corpus", "suffix", "fmt"),
    [
        ("typical-html", ".html", "html"),
        ("typical-dot", ".dot", "graphviz"),
        ("typical-vl", ".vl.json", "vega-lite"),
    ],
)
def test_document_corpora_through_bare_pool_gvisor_and_a_fresh_container(
    tmp_path, capsys, corpus, suffix, fmt, docker_sandbox, gvisor_sandbox
):
    """The generated html/dot/vega-lite corpora: distinct programs of their format, rendered by the worker's own
    document renderer in a bare warm container, the runc and gVisor pools and a fresh container per job, with
    the same pixels on the warm paths as on the bare one."""
    from coco_agent import formats
    from coco_agent.sandbox.bench import CORPORA, corpus_files

    files = corpus_files(CORPORA[corpus](tmp_path / corpus))
    assert len(files) == 20 and all(f.name.endswith(suffix) for f in files)
    assert {formats.guess(f.read_text(), f.name) for f in files} == {fmt}
    assert len({f.read_text() for f in files}) == 20
    paths = "bare,pool,gvisor_pool,docker_run"
    assert main(["bench", "sandbox", "--corpus", corpus, "--limit", "2", "--paths", paths, "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["rendered"] == 2 and figures["compared"] == 2, figures["failures"]
    assert set(figures["seconds"]) == set(paths.split(","))
    assert (
        figures["p50_ratio"] > 0 and figures["p50_gvisor_ratio"] > 0 and figures["p50_docker_run_ratio"] > 0
    )
    assert figures["fidelity"]["matched"] == 2, figures["fidelity"]
    assert figures["fidelity_gvisor_pool"]["matched"] == 2, figures["fidelity_gvisor_pool"]
