"""What result.json records so a run can be reproduced: the models as the servers named them, the sampling
settings and seeds, the sandbox recipe and image, the refiner and its settings, the prompt templates' hashes,
and the versions of coco and of the libraries that shape a run. `coco replay` re-derives a run from it and the
recorded answers (coco_agent/replays.py)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
from typing import Any

from coco_agent.ledger.records import read_calls
from coco_agent.paths import shipped_dir
from coco_agent.version import __version__

LIBRARIES = (
    "langgraph",
    "langchain-core",
    "langchain-openai",
    "transformers",
    "torch",
    "diffusers",
    "matplotlib",
)


def template_hashes() -> dict[str, str]:
    """sha256 (16 hex) of every prompt template shipped (prompts/*.md)."""
    folder = shipped_dir("prompts")
    return {
        path.stem: hashlib.sha256(path.read_bytes()).hexdigest()[:16] for path in sorted(folder.glob("*.md"))
    }


@functools.lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str | None], ...]:
    return tuple(_find_versions().items())


def library_versions() -> dict[str, str | None]:
    """Python's and the libraries' versions (read once per process: they cannot change under it)."""
    return dict(_library_versions())


def _find_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


_BUNDLES: dict[str, str] = {}  # image tag -> the worker bundle's digest
_IMAGE_IDS: dict[str, str] = {}  # image tag (a hash of its recipe) -> the engine's image id, once found


def sandbox_record(kinds: list[str]) -> dict[str, Any]:
    """The sandbox recipe (image tag: a hash of sandbox/ and the worker bundle) and, for Docker, the image id."""
    from coco_agent.sandbox.bundle import bundle_digest
    from coco_agent.sandbox.image import image_tag

    tag = image_tag()  # hashed again only when a file of sandbox/ changed
    if tag not in _BUNDLES:  # the bundle is part of what the tag hashes: same tag, same bundle
        _BUNDLES.clear()
        _BUNDLES[tag] = bundle_digest()
    record: dict[str, Any] = {"kinds": kinds, "image_tag": tag, "worker_bundle": _BUNDLES[tag]}
    if "docker" in kinds:
        try:
            from coco_agent.sandbox.image import docker_client

            tag = record["image_tag"]
            if tag not in _IMAGE_IDS:  # one engine call per process and tag, not one per run
                _IMAGE_IDS[tag] = docker_client(timeout=5).images.get(tag).id
            record["image_id"] = _IMAGE_IDS[tag]
        except Exception as exc:  # the record says why it is missing rather than failing the run
            record["image_id"] = None
            record["image_id_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    return record


def models_record(run_dir: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Per role: the model asked for and every id the server answered with (calls.jsonl)."""
    served: dict[str, set[str]] = {}
    labels: dict[str, set[str]] = {}
    for record in read_calls(run_dir):
        role = str(record.get("role"))
        if record.get("served_model"):
            served.setdefault(role, set()).add(str(record["served_model"]))
        labels.setdefault(role, set()).add(str(record.get("model")))
    asked = {"coder": settings.get("coder"), "critic": settings.get("critic")}
    return {
        role: {
            "asked": asked.get(role),
            "called": sorted(labels.get(role, ())),
            "served": sorted(served.get(role, ())),
        }
        for role in sorted({*asked, *labels})
    }


def reproduction(state: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """The ``reproduce`` record of result.json."""
    from coco_agent.models.resolve import sampling_gaps
    from coco_agent.models.sampling import Sampling

    run_dir = state.get("run_dir", "")
    sampling = Sampling(settings.get("temperature"), settings.get("max_tokens"), settings.get("seed"))
    kinds = sorted({a["sandbox"] for a in state.get("attempts") or [] if a.get("sandbox")})
    refinement = state.get("refinement") or {}
    try:
        sandbox = sandbox_record(kinds)
    except Exception as exc:
        sandbox = {"kinds": kinds, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {
        "coco_version": __version__,
        "models": models_record(run_dir, settings) if run_dir else {},
        "sampling": {
            **sampling.as_dict(),
            "not_supported": {
                role: gaps
                for role, spec in (("coder", settings.get("coder")), ("critic", settings.get("critic")))
                if (gaps := sampling_gaps(spec, sampling, base_url=settings.get("base_url")))
            },
            "candidates": settings.get("candidates", 1),
        },
        "seed": settings.get("seed"),
        "sandbox": sandbox,
        "refiner": {
            "name": settings.get("refiner"),
            "settings": refinement.get("settings"),
            "strength": refinement.get("strength"),
        },
        "prompt_templates": template_hashes(),
        "libraries": library_versions(),
    }
