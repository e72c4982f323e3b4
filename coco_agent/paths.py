"""Where the project's shipped files live (prompts, sandbox recipe)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def shipped_dir(name: str) -> Path:
    """Return the folder `name` (``prompts`` or ``sandbox``) from the checkout or the installed package."""
    for candidate in (PROJECT_ROOT / name, PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"cannot find the '{name}' folder next to {PACKAGE_DIR}; install coco-agent from its checkout "
        "(pip install -e .) so prompts and the sandbox recipe are available"
    )
