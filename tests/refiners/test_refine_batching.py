"""Refinement batched across runs: one pipeline call for drafts of the same size (the tiny random img2img
pipeline on CPU), the refine queue (up to B jobs or T seconds), and the refine node going through it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw

from coco_agent.refiners import RefineRequest, clear_refiner_cache, load_refiner
from coco_agent.refiners.batching import (
    DIRECT,
    RefineJob,
    RefineOutcome,
    RefineQueue,
    current_service,
    refine_service,
    run_jobs,
)

# a 64x64 PIL draft: the tiny CPU pipeline refines it in milliseconds (a 640x480 chart takes it minutes)
SMALL_PIL = """```python
from PIL import Image, ImageDraw
image = Image.new("RGB", (64, 64), "white")
ImageDraw.Draw(image).rectangle((8, 8, 40, 56), fill=(30, 90, 200))
image.save("output.png")
```"""


def _draft(size: tuple[int, int] = (64, 64), shade: int = 90) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((8, 8, size[0] // 2, size[1] - 8), fill=(30, shade, 200))
    return image


def _request(draft: Image.Image, seed: int) -> RefineRequest:
    return RefineRequest(draft=draft, prompt="a bar chart", strength=0.5, steps=4, seed=seed)


def test_drafts_of_one_size_share_one_pipeline_call(tiny_img2img_dir, monkeypatch):
    """Three 64x64 drafts go through the pipeline together, the 48x32 one alone; each output matches the
    picture its own call gives (same seed), and settings say how many shared the call."""
    clear_refiner_cache()
    refiner = load_refiner(str(tiny_img2img_dir))
    calls: list[int] = []
    real = refiner.pipeline.__class__.__call__

    def counting(self, *args, **kwargs):
        image = kwargs.get("image")
        calls.append(len(image) if isinstance(image, list) else 1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(refiner.pipeline.__class__, "__call__", counting)
    drafts = [_draft(shade=60), _draft(shade=120), _draft((48, 32)), _draft(shade=180)]
    batched = refiner.refine_batch([_request(d, seed=i) for i, d in enumerate(drafts)])
    assert sorted(calls) == [1, 3]
    assert [o.settings["batch"] for o in batched] == [3, 3, 1, 3]
    assert [o.image.size for o in batched] == [(64, 64), (64, 64), (48, 32), (64, 64)]
    calls.clear()
    for i, draft in enumerate(drafts):
        alone = refiner.refine(_request(draft, seed=i))
        assert alone.settings["batch"] == 1
        difference = np.abs(np.asarray(alone.image, float) - np.asarray(batched[i].image, float))
        assert difference.mean() < 1.0, (i, difference.mean())  # same seed, same picture (up to rounding)
    assert calls == [1, 1, 1, 1]


def test_different_seeds_give_different_pictures_in_one_batch(tiny_img2img_dir):
    refiner = load_refiner(str(tiny_img2img_dir))
    draft = _draft()
    first, second = refiner.refine_batch([_request(draft, seed=1), _request(draft, seed=2)])
    assert first.settings["batch"] == 2
    assert first.image.tobytes() != second.image.tobytes()


def test_run_jobs_judges_each_job_and_a_bad_refiner_fails_only_its_jobs(tiny_img2img_dir, tmp_path):
    jobs = [
        RefineJob(str(tiny_img2img_dir), _request(_draft(), 0), guard=False),
        RefineJob(str(tmp_path / "no-such-refiner"), _request(_draft(), 0), guard=False),
        RefineJob(str(tiny_img2img_dir), _request(_draft(shade=150), 1), guard=False),
    ]
    good, bad, other = run_jobs(jobs)
    assert good.image is not None and good.record["kept"] is True and good.record["settings"]["batch"] == 2
    assert other.record["settings"]["batch"] == 2
    assert bad.image is None and bad.record["kept"] is False and "refiner failed" in bad.record["why"]
    assert bad.record["error"]


def _echo_runner(seen: list[list[str]]):
    def run(jobs: list[RefineJob]) -> list[RefineOutcome]:
        seen.append([job.request.prompt for job in jobs])
        return [RefineOutcome(None, {"prompt": job.request.prompt}) for job in jobs]

    return run


def _job(prompt: str) -> RefineJob:
    return RefineJob("none", RefineRequest(draft=Image.new("RGB", (8, 8)), prompt=prompt))


def test_queue_fills_batches_from_many_threads():
    """Ten runs ask at once: batches of at most four, every run gets its own outcome."""
    seen: list[list[str]] = []
    queue = RefineQueue(max_batch=4, max_wait_s=5.0, runner=_echo_runner(seen))
    gate = threading.Barrier(10)
    outcomes: dict[str, str] = {}

    def one(i: int) -> None:
        gate.wait()
        outcomes[f"p{i}"] = queue.refine(_job(f"p{i}")).record["prompt"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.close()
    assert outcomes == {f"p{i}": f"p{i}" for i in range(10)}
    assert max(queue.batches) == 4 and sum(queue.batches) == 10
    assert sorted(p for batch in seen for p in batch) == sorted(outcomes)


def test_a_lone_job_waits_at_most_the_wait():
    """One run alone is not held for company: its batch of one starts after max_wait_s."""
    seen: list[list[str]] = []
    queue = RefineQueue(max_batch=4, max_wait_s=0.01, runner=_echo_runner(seen))
    assert queue.refine(_job("alone")).record == {"prompt": "alone"}
    queue.close()
    assert queue.batches == [1]


def test_a_runner_bug_reaches_every_job_of_its_batch():
    def broken(jobs):
        raise RuntimeError("boom")

    queue = RefineQueue(max_batch=2, max_wait_s=0.0, runner=broken)
    with pytest.raises(RuntimeError, match="boom"):
        queue.refine(_job("x"))
    queue.close()
    with pytest.raises(RuntimeError, match="closed"):
        queue.submit(_job("late"))


def test_queue_refuses_bad_settings():
    with pytest.raises(ValueError, match="at least 1"):
        RefineQueue(max_batch=0)
    with pytest.raises(ValueError, match="0 or more"):
        RefineQueue(max_wait_s=-1)


def test_refine_service_is_set_for_a_block():
    queue = RefineQueue(runner=_echo_runner([]))
    assert current_service() is DIRECT
    with refine_service(queue):
        assert current_service() is queue
    assert current_service() is DIRECT
    queue.close()


def test_coco_batch_refines_drafts_of_several_runs_in_one_call(tiny_img2img_dir, openai_server, tmp_path):
    """The local engine: four runs at once, their drafts (same size) refined together; result.json's
    refinement says how many shared the pipeline call, and every run has its own refined picture."""
    from support.batch_helpers import keyed, keyed_responder, write_jsonl

    from coco_agent.batch import BatchOptions, run_batch
    from coco_agent.context import RunContext

    openai_server.respond_with(keyed_responder(default_code=SMALL_PIL))
    prompts = write_jsonl(tmp_path / "p.jsonl", [{"id": f"r{i}", "prompt": keyed(f"r{i}")} for i in range(4)])
    ctx = RunContext(
        llm="openai:test-model",
        vlm="none",
        base_url=openai_server.base_url,
        sandbox="process",
        format="pil",
        refiner=str(tiny_img2img_dir),
        refine_strength=0.5,
        refine_guard=False,
    )
    options = BatchOptions(prompts, tmp_path / "out", ctx, workers=4, refine_batch=4, refine_wait_s=5.0)
    summary = run_batch(options)
    assert summary["statuses"]["accepted"] == 4, summary
    import json

    batches = []
    for i in range(4):
        result = json.loads((tmp_path / "out" / f"r{i}" / "result.json").read_text())
        assert result["refinement"]["kept"] is True and result["paths"]["final"] == "final.png"
        batches.append(result["refinement"]["settings"]["batch"])
    assert max(batches) > 1, batches  # drafts of several runs shared a pipeline call
