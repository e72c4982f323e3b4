"""Prompt templates, read from the `prompts/` folder (files, so they can be read and edited without code)."""

from __future__ import annotations

from functools import cache

from coco_agent import formats
from coco_agent.paths import shipped_dir


@cache
def template(name: str) -> str:
    """Return the text of ``prompts/<name>.md``."""
    return (shipped_dir("prompts") / f"{name}.md").read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    """Fill a template's ``{placeholders}``."""
    return template(name).format(**values).strip()


def coder_system(fmt: str) -> str:
    """The code writer's system prompt for a format; for `auto`, the choice and every format's rules."""
    if fmt == "auto":
        rules = [template("format_auto").strip()]
        rules += [
            f"### {name}\n{template(record.prompt).strip()}" for name, record in formats.FORMATS.items()
        ]
        return render("coder_system", format_rules="\n\n".join(rules))
    return render("coder_system", format_rules=template(formats.get(fmt).prompt).strip())
