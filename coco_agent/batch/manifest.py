"""OUT/batch.json: which prompts file and which settings made a batch folder, so a rerun can trust what is there.

Rerunning the same command continues the batch. The same OUT with another prompts file or other run settings is
refused unless ``force``; then prompts whose run directory was made with other settings are redone. Workers,
limits, deadlines and retries are not run settings: they may change between reruns.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

from coco_agent.context import RunContext
from coco_agent.errors import BatchRefused
from coco_agent.rundir import BATCH_FILE
from coco_agent.runs import now, read_json, write_json
from coco_agent.settings import settings_of
from coco_agent.version import __version__

# Every run setting must match, except these (not about the result, or duplicates of llm / vlm).
# `review` says whether a person is asked, not what the result is: a rerun with or without --review continues.
IGNORED_KEYS = frozenset({"runs_dir", "coder", "critic", "review"})


def run_settings(ctx: RunContext) -> dict[str, Any]:
    """The settings a run directory must share with its batch (JSON-normalised, as run.json keeps them)."""
    data = json.loads(json.dumps(settings_of(ctx), default=str))
    return {key: value for key, value in data.items() if key not in IGNORED_KEYS}


def same_run_settings(saved_context: dict[str, Any], ctx: RunContext) -> bool:
    """True when a run.json's ``context`` matches ``ctx`` on every setting that shapes the result."""
    return all(_saved(saved_context, key) == value for key, value in run_settings(ctx).items())


def _saved(saved: dict[str, Any], key: str) -> Any:
    """A saved setting; one that a newer version added (absent from the file) counts as its default, so an
    upgrade alone never turns finished prompts into "made with other settings"."""
    if key in saved:
        return saved[key]
    default = _DEFAULTS.get(key, dataclasses.MISSING)
    return None if default is dataclasses.MISSING else json.loads(json.dumps(default, default=str))


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunContext)}


def open_batch(
    out: Path, prompts: Path, ctx: RunContext, options: dict[str, Any], *, force: bool = False
) -> dict[str, Any]:
    """Create or check OUT/batch.json and return it (with the options of this invocation recorded)."""
    wanted = {"prompts": str(prompts.resolve()), "settings": run_settings(ctx)}
    path = out / BATCH_FILE
    manifest: dict[str, Any] | None = None
    if path.exists():
        try:
            manifest = read_json(path)
        except ValueError as exc:
            if not force:
                raise BatchRefused(
                    f"{path} is unreadable ({exc}); pass --force to start a new batch"
                ) from exc
    elif out.exists() and any(out.iterdir()) and not force:
        raise BatchRefused(
            f"{out} is not empty and was not made by `coco batch` (no {BATCH_FILE}); "
            "pick another -o, or pass --force to use it anyway"
        )
    if manifest is not None:
        differences = _differences(manifest, wanted)
        if differences and not force:
            raise BatchRefused(
                f"{out} was made by another batch ({'; '.join(differences)}). Rerun with the same prompts file "
                "and settings to continue it, pick another -o, or pass --force to redo the prompts with the "
                "new settings"
            )
        if differences:
            manifest = None
    if manifest is None:
        manifest = {"batch_id": uuid.uuid4().hex[:12], "created": now(), **wanted}
    manifest.update(options=options, updated=now(), version=__version__)
    out.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)
    return manifest


def _differences(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    found = []
    if saved.get("prompts") != wanted["prompts"]:
        found.append(f"prompts file {saved.get('prompts')!r}, not {wanted['prompts']!r}")
    old = saved.get("settings") or {}
    for key, value in wanted["settings"].items():
        if _saved(old, key) != value:
            found.append(f"{key} {_saved(old, key)!r}, not {value!r}")
    return found
