"""Refinement as jobs, batched across runs: the refine node hands a job to the process's refine service.

A ``RefineJob`` is what the refine node has decided (the refiner, the request with the draft, the guardrail's
settings); ``run_jobs`` refines a list of jobs (drafts of the same size at the same level share one batched
pipeline call, ``DiffusersRefiner.refine_batch``) and applies the guardrail to each, returning one
``RefineOutcome`` per job. Where the jobs run is the process's *refine service*:

- ``DIRECT`` (the default: `coco generate`, `coco resume`): each job at once, in the calling thread;
- ``RefineQueue`` (`coco batch`; the Ray engine's GPU actor): collects jobs from every run in flight, up to
  ``max_batch`` of them or for at most ``max_wait_s`` after the first one, and runs them together in one thread
  (the GPU runs one batch at a time, full);
- the Ray engine's client (``coco_agent.engines.ray``), which sends each job to a GPU actor that queues it.

``refine_service(service)`` sets the service for a block (process-wide, like ``models.calls.call_policy``).
Everything a job holds pickles (PIL images do), so a job can travel to another machine.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from PIL import Image

from coco_agent.refiners.base import RefineOutput, RefineRequest
from coco_agent.refiners.text_layer import TextLayer, composite

DEFAULT_MAX_BATCH = 4  # the batch that halves the per-image time of the SDXL families on an H200
DEFAULT_MAX_WAIT_S = 0.05  # how long the first job of a batch waits for company


@dataclass
class RefineJob:
    """One refinement to run: which refiner, the request (draft, prompt, strength, seed, kept regions) and
    the guardrail's settings (the strings the image must show, CLIP margin, OCR engine, CLIP model)."""

    refiner: str
    request: RefineRequest
    texts: list[str] = field(default_factory=list)
    guard: bool = True
    margin: float = 0.02
    ocr_engine: str = "auto"
    clip_model: str = "auto"
    layer: TextLayer | None = (
        None  # layered text: the request's draft is the bare one; this goes on top after
    )


@dataclass
class RefineOutcome:
    """What became of a job: the refined picture (None when the refiner failed; with layered text, the text
    layer composited over what the refiner made, which is ``bare``) and the record the refine node keeps
    (refined settings, kept, why, checks, scores, protected text, or error)."""

    image: Image.Image | None
    record: dict[str, Any]
    bare: Image.Image | None = None


class RefineService(Protocol):
    """Where refine jobs run (blocking; called from the refine node's thread)."""

    def refine(self, job: RefineJob) -> RefineOutcome: ...


def run_jobs(jobs: list[RefineJob]) -> list[RefineOutcome]:
    """Refine ``jobs`` (batched per refiner) and judge each against its draft; never raises for a job's
    problem: a refiner that fails makes that job's outcome an error record (the draft stays final)."""
    from coco_agent.refiners import load_refiner

    outputs: list[RefineOutput | BaseException | None] = [None] * len(jobs)
    by_refiner: dict[str, list[int]] = {}
    for index, job in enumerate(jobs):
        by_refiner.setdefault(job.refiner, []).append(index)
    for name, members in by_refiner.items():
        try:
            refiner = load_refiner(name)
        except Exception as exc:
            for index in members:
                outputs[index] = exc
            continue
        requests = [jobs[i].request for i in members]
        for index, output in zip(members, refine_many(refiner, requests), strict=True):
            outputs[index] = output
    return [_judged(job, output) for job, output in zip(jobs, outputs, strict=True)]


def refine_many(refiner: Any, requests: list[RefineRequest]) -> list[RefineOutput | BaseException]:
    """The refiner's batched call when it has one; when that fails, each request alone (so one bad draft
    costs only its own refinement)."""
    batch = getattr(refiner, "refine_batch", None)
    if batch is not None and len(requests) > 1:
        try:
            return list(batch(requests))
        except Exception:
            pass
    found: list[RefineOutput | BaseException] = []
    for request in requests:
        try:
            found.append(refiner.refine(request))
        except Exception as exc:
            found.append(exc)
    return found


def _judged(job: RefineJob, output: RefineOutput | BaseException | None) -> RefineOutcome:
    if not isinstance(output, RefineOutput):
        error = f"{type(output).__name__}: {str(output)[:500]}"
        return RefineOutcome(
            None, {"kept": False, "error": error, "why": "refiner failed; the final image is the draft"}
        )
    record: dict[str, Any] = {"settings": output.settings}
    image, bare, draft = output.image, None, job.request.draft
    if job.layer is not None:  # the text goes back on top at its own pixels; judged against the real draft
        size = job.layer.layer.size
        bare = image if image.size == size else image.resize(size, Image.LANCZOS)
        draft = job.layer.draft
        image = composite(bare, job.layer.layer)
        record["text_layer"] = {"composited": True}
    if output.settings.get("protected_from") is not None:
        record["protected_text"] = {
            "source": output.settings.get("protected_from"),
            "regions": output.settings.get("protected_regions"),
        }
    if not job.guard:
        return RefineOutcome(
            image, record | {"kept": True, "why": "refined; not verified (guardrail turned off)"}, bare
        )
    try:
        from coco_agent.refiners.guardrail import verify

        verdict, scores = verify(
            draft,
            image,
            job.request.prompt,
            job.texts,
            margin=job.margin,
            ocr_engine=job.ocr_engine,
            clip_model=job.clip_model,
        )
    except Exception as exc:  # the guardrail could not judge: keep the draft, whose text is exact
        why = f"kept the draft: the guardrail failed ({type(exc).__name__}: {str(exc)[:300]})"
        return RefineOutcome(image, record | {"kept": False, "why": why}, bare)
    return RefineOutcome(
        image,
        record
        | {"kept": verdict.keep_refined, "why": verdict.why, "checks": verdict.checks, "scores": scores},
        bare,
    )


class DirectService:
    """Each job at once, in the calling thread (batch of one)."""

    def refine(self, job: RefineJob) -> RefineOutcome:
        return run_jobs([job])[0]


DIRECT = DirectService()


class RefineQueue:
    """Collects jobs from many threads and runs them in batches of up to ``max_batch`` in one thread of its
    own; a batch starts once it is full or ``max_wait_s`` after its first job arrived. ``runner`` refines a
    list of jobs (``run_jobs``). Close it to stop its thread (jobs still queued are run first)."""

    def __init__(
        self,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        runner: Callable[[list[RefineJob]], list[RefineOutcome]] = run_jobs,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"a refine batch holds at least 1 draft, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"the refine wait is 0 or more seconds, got {max_wait_s:g}")
        self.max_batch, self.max_wait_s, self.runner = max_batch, max_wait_s, runner
        self.batches: list[int] = []  # the size of every batch run (what the benchmark and tests read)
        self._pending: list[tuple[RefineJob, Future]] = []
        self._first_at: float | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="coco-refine-queue", daemon=True)
        self._thread.start()

    def submit(self, job: RefineJob) -> Future:
        """Queue a job; its future gets the outcome."""
        future: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the refine queue is closed")
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.append((job, future))
            self._cond.notify_all()
        return future

    def refine(self, job: RefineJob) -> RefineOutcome:
        return self.submit(job).result()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _take(self) -> list[tuple[RefineJob, Future]] | None:
        with self._cond:
            while True:
                if self._pending:
                    waited = time.monotonic() - (self._first_at or 0.0)
                    if len(self._pending) >= self.max_batch or waited >= self.max_wait_s or self._closed:
                        taken, self._pending = (
                            self._pending[: self.max_batch],
                            self._pending[self.max_batch :],
                        )
                        self._first_at = time.monotonic() if self._pending else None
                        return taken
                    self._cond.wait(self.max_wait_s - waited)
                elif self._closed:
                    return None
                else:
                    self._cond.wait()

    def _loop(self) -> None:
        while (taken := self._take()) is not None:
            self.batches.append(len(taken))
            try:
                outcomes = self.runner([job for job, _ in taken])
            except BaseException as exc:  # a runner bug: every job of the batch gets it
                for _, future in taken:
                    future.set_exception(exc)
                continue
            for (_, future), outcome in zip(taken, outcomes, strict=True):
                future.set_result(outcome)


_service: RefineService | None = None
_service_lock = threading.Lock()


def current_service() -> RefineService:
    """The process's refine service (``DIRECT`` unless a block set another)."""
    return _service or DIRECT


@contextlib.contextmanager
def refine_service(service: RefineService) -> Iterator[RefineService]:
    """Send every refine job of this process to ``service`` until the block ends."""
    global _service
    with _service_lock:
        previous, _service = _service, service
    try:
        yield service
    finally:
        with _service_lock:
            _service = previous
