"""The `ray` engine: a batch on a Ray cluster (or a local Ray instance), with the same per-prompt work.

Shape (why not Ray Data: see README, 'Batches on a Ray cluster'): this driver reads the prompts file as a
stream and keeps every DraftStage actor (``ray_stages``; one per unit of each node's ``coco_sandbox``
resource) busy with ``--workers`` prompts each; a DraftStage runs ``batch.work.process_prompt`` (skip /
resume / start, result.json) beside its node's warm sandbox, refinement goes to the RefineStage actors (one per
GPU) that batch drafts from every node, and model requests take cluster-wide slots from ModelSlots. The
driver keeps what only it can: the display's events, the after-hook, summary.json/csv.

Exactly once: a prompt is published by one atomic result.json; a finished prompt is skipped without a model
call; the prompt's lock (a Postgres advisory lock held by the DraftStage's session) fences a duplicate; a
prompt whose DraftStage died (its node lost) goes to another one and resumes from its last checkpoint, so at
most the node that was running is redone. A refinement batch in flight when a GPU node dies runs again (same
seed, same picture). Postgres going away stops the batch: runs in flight stay resumable (rerun).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from coco_agent.batch.prompts_file import PromptItem, count_prompts, iter_prompts
from coco_agent.batch.work import (
    RAN,
    BatchOptions,
    BatchTally,
    OnEvent,
    OnResult,
    begin_batch,
    failed_event,
    finish_batch,
    publish,
)
from coco_agent.engines import ray_checks
from coco_agent.errors import BatchAborted, ClusterUnavailable
from coco_agent.progress import shielded
from coco_agent.rundir import result_path
from coco_agent.runs import read_json
from coco_agent.safe_text import terminal_text

MAX_TRIES = 3  # a prompt whose DraftStage died this many times ends failed (rerun to try again)
WAIT_S = 1.0  # how often the driver looks up from ray.wait (status lines, lost stages)
STATUS_EVERY_S = 15.0


class RayEngine:
    """The engine table's ``ray`` entry."""

    name = "ray"

    def run(
        self, options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
    ) -> dict[str, Any]:
        """Run a batch to the end on Ray (blocking); return the summary (summary.json without its rows)."""
        if options.ray_address:
            ray_checks.check_address(options.ray_address)  # at once, before any file is written
        if options.pg_url:
            from coco_agent.checkpoints.postgres import check_reachable

            check_reachable(options.pg_url)
        elif options.ray_address:
            raise ClusterUnavailable(
                "a Ray cluster keeps checkpoints in Postgres: set --pg-url or COCO_PG_URL "
                "(postgresql://USER:PASSWORD@HOST:5432/DB); see README, 'Batches on a Ray cluster'"
            )
        manifest = begin_batch(options)
        with connected(options) as ray, Stages(ray, options, manifest["batch_id"]) as stages:
            return Driver(ray, options, manifest, stages, on_event, on_result).run()


ENGINE = RayEngine()


@contextlib.contextmanager
def connected(options: BatchOptions) -> Iterator[Any]:
    """``ray`` connected to the cluster (or a local instance started now, ended after)."""
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailable(
            "--engine ray needs the cluster extra: pip install 'coco-agent[cluster]'"
        ) from exc
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if options.ray_address:
        kwargs["address"] = options.ray_address
    else:  # a laptop: a new one-node instance (never someone else's), the same code path
        kwargs["address"] = "local"
        slots = int(os.environ.get("COCO_RAY_SLOTS") or max(1, (os.cpu_count() or 2) // 2))
        kwargs["resources"] = {ray_checks.SANDBOX_RESOURCE: slots}
    # Ray prints cluster events (a raylet that died, say) on sys.stdout, some held back until ray.shutdown():
    # send them all to stderr, so stdout keeps only what the CLI writes there (--json lines; that stream was
    # bound before this)
    with contextlib.redirect_stdout(sys.stderr):
        try:
            ray.init(**kwargs)
        except Exception as exc:
            raise ClusterUnavailable(
                f"cannot join the Ray cluster at {options.ray_address or 'a local instance'} "
                f"({type(exc).__name__}: {str(exc)[:300]}); {ray_checks.HEAD_HINT}"
            ) from exc
        try:
            yield ray
        finally:
            ray.shutdown()


class Stages:
    """The batch's actors: ModelSlots (when bounded), RefineStages (when refining), DraftStages; closed in
    that order's reverse (sandboxes removed, pools closed) and killed when the block ends."""

    def __init__(self, ray: Any, options: BatchOptions, batch_id: str) -> None:
        self.ray, self.options, self.batch_id = ray, options, batch_id
        self.drafts: list[Any] = []
        self.refiners: list[Any] = []
        self.slots: Any = None
        self.budget: Any = None  # the BudgetBook, when the batch has a budget

    def __enter__(self) -> Stages:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        ray, options = self.ray, self.options
        from coco_agent.engines.ray_stages import BudgetBook, DraftStage, ModelSlots, RefineStage

        nodes = ray_checks.sandbox_nodes(ray.nodes())
        self._check_nodes(nodes)
        if options.batch_budget() is not None:
            self.budget = (
                ray.remote(BudgetBook)
                .options(num_cpus=0)
                .remote(options.batch_budget_usd, options.batch_budget_tokens, options.batch_deadline_s)
            )
        if options.model_concurrency:
            lease = options.ctx.model_timeout_s * (options.retries + 1) + 60
            self.slots = ray.remote(ModelSlots).options(num_cpus=0).remote(options.model_concurrency, lease)
        if (options.ctx.refiner or "none").strip().lower() != "none":
            gpus = int(ray.cluster_resources().get("GPU", 0))
            stage = ray.remote(RefineStage).options(
                num_cpus=0,
                num_gpus=1 if gpus else 0,
                max_restarts=-1,
                max_task_retries=0,
                max_concurrency=1000,
            )
            self.refiners = [
                stage.remote(options.ctx.refiner, options.refine_batch, options.refine_wait_s)
                for _ in range(max(1, gpus))
            ]
            self._ready(self.refiners, "the refiner did not load on its GPU node")
        draft = ray.remote(DraftStage).options(
            num_cpus=0,
            resources={ray_checks.SANDBOX_RESOURCE: 1},
            max_restarts=-1,
            max_task_retries=0,
            max_concurrency=options.workers + 4,
        )
        count = sum(int(n["Resources"][ray_checks.SANDBOX_RESOURCE]) for n in nodes)
        self.drafts = [
            draft.remote(options, self.batch_id, self.refiners, self.slots, options.pg_url, self.budget)
            for _ in range(count)
        ]
        self._ready(self.drafts, "a drafting stage did not start")

    def _check_nodes(self, nodes: list[dict[str, Any]]) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        options = self.options
        probe = self.ray.remote(ray_checks.probe_node)
        refs = {
            ray_checks.node_name(node): probe.options(
                num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(
                str(options.prompts.resolve()), str(options.out.resolve()), self.batch_id, options.ctx.sandbox
            )
            for node in nodes
        }
        try:
            reports = dict(zip(refs, self.ray.get(list(refs.values()), timeout=120), strict=True))
        except Exception as exc:
            raise ClusterUnavailable(
                f"the sandbox nodes did not answer a check ({exc}); is coco-agent installed there?"
            ) from exc
        ray_checks.check_reports(reports, options.prompts, options.out, options.ctx.sandbox)

    def _ready(self, actors: list[Any], what: str) -> None:
        try:
            self.ray.get([actor.ready.remote() for actor in actors], timeout=600)
        except Exception as exc:
            raise ClusterUnavailable(f"{what}: {terminal_text(exc)[:500]}") from exc

    def refine_batches(self) -> list[int]:
        """The size of every refinement batch the RefineStages ran (those still alive)."""
        sizes: list[int] = []
        for stage in self.refiners:
            with contextlib.suppress(Exception):
                sizes += self.ray.get(stage.stats.remote(), timeout=10)["batches"]
        return sizes

    def __exit__(self, *exc: object) -> None:
        ray = self.ray
        closing = [a.close.remote() for a in self.drafts + self.refiners]
        with contextlib.suppress(Exception):
            ray.wait(closing, num_returns=len(closing), timeout=60)
        extra = [a for a in (self.slots, self.budget) if a is not None]
        for actor in [*self.drafts, *self.refiners, *extra]:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)


@dataclass
class Flight:
    item: PromptItem
    stage: int
    tries: int
    started: float = field(default_factory=time.monotonic)


class Driver:
    """Feeds prompts to the DraftStages, ``workers`` at a time each, and turns what comes back into events."""

    def __init__(
        self,
        ray: Any,
        options: BatchOptions,
        manifest: dict[str, Any],
        stages: Stages,
        on_event: OnEvent | None,
        on_result: OnResult | None,
    ) -> None:
        self.ray, self.options, self.manifest, self.stages = ray, options, manifest, stages
        self.on_event = shielded(on_event, "the batch") if on_event else (lambda event: None)
        self.on_result = on_result
        self.tally = BatchTally()
        self.done = 0
        self.total: int | None = None
        self.flights: dict[Any, Flight] = {}
        self.load = [0] * len(stages.drafts)
        self.down: dict[int, Any] = {}  # stage index -> its ready() call, while Ray restarts it
        self.retry: deque[tuple[PromptItem, int]] = deque()
        self.aborted: BaseException | None = None
        self.store_lost = False
        self.budget_stop = ""

    def run(self) -> dict[str, Any]:
        options = self.options
        self.on_event(
            {
                "event": "start",
                "batch_id": self.manifest["batch_id"],
                "total": None,
                "workers": options.workers * len(self.stages.drafts),
                "out": str(options.out),
            }
        )
        started = time.monotonic()
        scan = threading.Thread(target=self._scan, daemon=True)
        scan.start()
        items = iter_prompts(options.prompts, options.limit)
        exhausted = False
        last_status = time.monotonic()
        while True:
            exhausted = self._feed(items, exhausted)
            if not self.flights and (self.budget_stop or ((exhausted or self.aborted) and not self.retry)):
                break  # (a spent batch budget leaves what was not started, retries too, pending)
            if not self.flights:  # every stage is down: wait for Ray to bring one back
                self._revive()
                time.sleep(WAIT_S)
                if time.monotonic() - last_status > STATUS_EVERY_S:
                    last_status = time.monotonic()
                    self._status(
                        "every drafting stage is down; waiting for a node with coco_sandbox to come back"
                    )
                continue
            ready, _ = self.ray.wait(list(self.flights), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                self._landed(ref, self.flights.pop(ref))
            self._revive()
            if time.monotonic() - last_status > STATUS_EVERY_S:
                last_status = time.monotonic()
                self._watch()
        scan.join(timeout=5)
        if self.aborted is not None:
            raise self.aborted
        if self.stages.budget is not None:
            spent = self.ray.get(self.stages.budget.as_dict.remote(), timeout=30)
            self.tally.budget = {**spent, "stopped": self.budget_stop or None}
        wall = time.monotonic() - started
        summary = finish_batch(options, self.manifest, self.tally, wall)
        return summary | {"refine_batches": self.stages.refine_batches()} if self.stages.refiners else summary

    def _scan(self) -> None:
        try:
            self.total = count_prompts(self.options.prompts, self.options.limit)
            self.on_event({"event": "total", "total": self.total})
        except Exception as exc:  # a bad line: stop feeding (runs in flight stay resumable)
            self.aborted = self.aborted or exc

    def _feed(self, items: Iterator[PromptItem], exhausted: bool) -> bool:
        """Hand out prompts while some stage has room; True once the file is read to its end."""
        while self.aborted is None and not self.budget_stop:
            stage = self._free_stage()
            if stage is None:
                break
            if self.stages.budget is not None:  # no new prompt once the batch budget is spent
                self.budget_stop = self._budget_reason()
                if self.budget_stop:
                    break
            if self.retry:
                item, tries = self.retry.popleft()
            elif exhausted:
                break
            else:
                try:
                    item = next(items, None)
                except Exception as exc:  # a bad line (the scan usually finds it first)
                    self.aborted = exc
                    break
                if item is None:
                    return True
                tries = 1
            ref = self.stages.drafts[stage].process.remote(item)
            self.flights[ref] = Flight(item, stage, tries)
            self.load[stage] += 1
        return exhausted

    def _budget_reason(self) -> str:
        try:
            return str(self.ray.get(self.stages.budget.reason.remote(), timeout=30))
        except Exception as exc:
            return f"the batch budget cannot be checked ({type(exc).__name__}); nothing more is started"

    def _free_stage(self) -> int | None:
        free = [
            i for i in range(len(self.load)) if i not in self.down and self.load[i] < self.options.workers
        ]
        return min(free, key=lambda i: self.load[i]) if free else None

    def _landed(self, ref: Any, flight: Flight) -> None:
        from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

        self.load[flight.stage] -= 1
        item, run_dir = flight.item, self.options.run_dir(flight.item)
        try:
            event = self.ray.get(ref)
        except (RayActorError, ActorUnavailableError) as exc:  # its node (or process) was lost
            self._stage_down(flight.stage)
            if flight.tries < MAX_TRIES:
                self.retry.append((item, flight.tries + 1))
                self._status(f"prompt {item.id}: its drafting stage was lost; it resumes on another one")
                return
            event = failed_event(item, run_dir, exc, time.monotonic() - flight.started)
        except RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            if _store_lost(cause):
                self._postgres_gone(cause)
                return
            event = failed_event(item, run_dir, cause, time.monotonic() - flight.started)
        if event.get("how") == "error" and "BatchAborted" in str(event.get("error")):
            self.aborted = self.aborted or BatchAborted(event["error"])
        if event.get("how") in RAN and self.on_result is not None and result_path(run_dir).exists():
            event |= publish(item, run_dir, read_json(result_path(run_dir)), self.on_result)
        self.tally.add(event)
        self.done += 1
        flight_s = round(time.monotonic() - flight.started, 3)  # the driver's view: wall_seconds + Ray's part
        self.on_event(event | {"done": self.done, "total": self.total, "driver_seconds": flight_s})

    def _postgres_gone(self, cause: BaseException) -> None:
        """Postgres went away: no new prompt starts; the runs in flight end resumable; the batch says so."""
        if not self.store_lost:
            self.store_lost = True
            self._status(f"Postgres went away ({terminal_text(cause)[:200]}); runs in flight stay resumable")
        in_flight = len(self.flights) + 1
        self.aborted = BatchAborted(
            "the batch stopped: Postgres (the checkpoint store) went away; "
            f"{in_flight} run(s) in flight were left resumable. Start Postgres again and rerun the same command"
        )

    def _stage_down(self, stage: int) -> None:
        if stage not in self.down:
            self.down[stage] = self.stages.drafts[stage].ready.remote()

    def _revive(self) -> None:
        """Stages Ray has restarted (on a node with room) take prompts again."""
        for stage, ref in list(self.down.items()):
            ready, _ = self.ray.wait([ref], timeout=0)
            if not ready:
                continue
            try:
                self.ray.get(ref)
                del self.down[stage]
            except Exception:
                self.down[stage] = self.stages.drafts[stage].ready.remote()

    def _watch(self) -> None:
        """A status line when refinement has nowhere to run (its GPU node lost) or stages are down."""
        if self.stages.refiners and not self.ray.cluster_resources().get("GPU", 0):
            lost_gpu = any(n.get("Resources", {}).get("GPU") for n in self.ray.nodes() if not n.get("Alive"))
            if lost_gpu:
                self._status("waiting for a GPU node: the refinement stage has nowhere to run")
        if self.down:
            self._status(
                f"{len(self.down)} drafting stage(s) down; Ray restarts them where coco_sandbox is free"
            )

    def _status(self, message: str) -> None:
        self.on_event({"event": "status", "message": message})
        if os.environ.get("COCO_RAY_DEBUG"):
            print(f"coco ray: {message}", file=sys.stderr)


def _store_lost(exc: BaseException) -> bool:
    from coco_agent.errors import CheckpointStoreLost

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, CheckpointStoreLost):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
