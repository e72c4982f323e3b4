"""Engines: what runs a batch's prompts, picked by name (`coco batch --engine NAME`) from one table.

An engine only schedules. The per-prompt work (plan: skip / resume / start; run the graph; publish the result;
warm up; the event each prompt ends with) is ``coco_agent.batch.work``, the same for every engine, so
exactly-once lives there. An engine takes ``BatchOptions`` and two callbacks and returns the summary:

- ``local`` (``coco_agent.engines.local``): N runs at once in one asyncio event loop, in this process.
- ``ray`` (``coco_agent.engines.ray_engine``): drafting stages beside each node's sandbox, refinement batched
  on the GPU nodes, checkpoints in Postgres (``ray_stages``: the actors; ``ray_checks``: the start-up checks).

Adding an engine = one module with an ``ENGINE`` object (``Engine`` below) + one line in ``ENGINES``. The table
names modules, not objects: nothing here imports an engine (or what it needs, a cluster client say) until it is
picked.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from coco_agent.batch.work import BatchOptions, OnEvent, OnResult

DEFAULT_ENGINE = "local"


@dataclass(frozen=True)
class EngineEntry:
    """Where an engine lives (a module with ``ENGINE``) and what `--engine` help says of it."""

    module: str
    help: str


ENGINES: dict[str, EngineEntry] = {
    "local": EngineEntry("coco_agent.engines.local", "N runs at once in this process (--workers)"),
    "ray": EngineEntry(
        "coco_agent.engines.ray_engine",
        "a Ray cluster (--ray-address; none: a local Ray instance), N runs at once per drafting stage",
    ),
}


class Engine(Protocol):
    """Runs every prompt of ``options`` with ``coco_agent.batch.work`` and returns the batch summary.

    ``on_event(event)`` gets ``start``, ``total`` and one ``prompt`` event per prompt (``done`` / ``total``
    added); ``on_result(item, run_dir, result)`` is the after-hook of each run that ran (``work.publish``).
    Raises PromptsFileError, BatchRefused or BatchAborted as ``coco_agent.batch`` describes.
    """

    name: str

    def run(
        self, options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
    ) -> dict[str, Any]: ...


class UnknownEngine(ValueError):
    """No engine of that name; the message lists the choices."""


def engine_help() -> str:
    """One line for `--engine`: every choice and what it does."""
    return "; ".join(f"{name}: {entry.help}" for name, entry in ENGINES.items())


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (its module imported now)."""
    entry = ENGINES.get(name)
    if entry is None:
        raise UnknownEngine(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}")
    return importlib.import_module(entry.module).ENGINE


def run_batch(
    options: BatchOptions, *, on_event: OnEvent | None = None, on_result: OnResult | None = None
) -> dict[str, Any]:
    """Run a batch with the engine ``options.engine`` names (blocking); return the summary."""
    return get_engine(options.engine).run(options, on_event=on_event, on_result=on_result)


__all__ = ["DEFAULT_ENGINE", "ENGINES", "Engine", "EngineEntry", "UnknownEngine", "get_engine", "run_batch"]
