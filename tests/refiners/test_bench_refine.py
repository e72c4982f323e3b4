"""scripts/bench_refine.py runs every family end to end on tiny configs (CPU), as CI proof that it works."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_refine.py"


def test_bench_runs_every_family_on_tiny_configs(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_refine", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # Qwen-Image-Edit always encodes its condition image at 1024² (a minute on these CPUs even with tiny
    # configs); its tiny pipeline is exercised by test_refiner_families through the production loader instead.
    families = [name for name in bench.FAMILY_NAMES if name != "qwen-image-edit"]
    argv = ["--tiny", "--size", "64", "--steps", "2", "--repeats", "1", "--batch", "1", "--json"]
    assert bench.main([*argv, "--families", ",".join(families)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["family"] for row in rows] == families
    for row in rows:
        assert row["seconds_per_image_b1"] > 0 and row["refine_seconds_b1"] > 0
        assert row["seconds_per_image_b4"] is None and row["peak_gpu_gib"] is None


def test_steps_override_per_family() -> None:
    spec = importlib.util.spec_from_file_location("bench_refine", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    overrides = ["4", "flux-kontext=8"]
    assert bench.steps_for("flux-kontext", overrides) == 8
    assert bench.steps_for("sdxl-turbo", overrides) == 4
    assert bench.steps_for("sdxl-turbo", []) is None
