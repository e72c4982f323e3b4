"""Find model weights on this machine: a local directory or a Hugging Face cache entry. Never downloads."""

from __future__ import annotations

from pathlib import Path

from coco_agent.errors import WeightsNotFoundError


def locate_weights(name: str, *, what: str = "model") -> Path:
    """Return the directory holding `name` (a local directory or a cached hub id) without any download.

    `what` names the thing in the error message ("model", "refiner").
    """
    name = name.strip()
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    if _looks_like_hub_id(name):
        cached = _cached_snapshot(name)
        if cached is not None:
            return cached
    raise WeightsNotFoundError(_not_found_message(name, what))


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not name.startswith((".", "~", "/"))


def _cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached, invalid id, or a partial cache entry
        return None


def _not_found_message(name: str, what: str) -> str:
    return (
        f"{what} '{name}' is neither an existing directory nor a model in the local Hugging Face cache, "
        "and coco-agent never downloads weights by itself.\n"
        f"On a machine with internet access run:  hf download {name}\n"
        "then copy the cache (~/.cache/huggingface/hub, or $HF_HOME/hub) here, or run\n"
        f"  hf download {name} --local-dir DIR\n"
        "and pass DIR instead of the hub id."
    )
