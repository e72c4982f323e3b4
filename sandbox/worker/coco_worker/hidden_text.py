"""Whether this job draws its text. A job whose limits say "hide_text" renders the same picture with every text
drawing nothing (layout unchanged): the host separates the draft's text from what lies beneath it (layered
text, coco_agent/refiners/text_layer.py). Set in the job's process before its program runs; a renderer that
can honour it says HIDES_TEXT = True."""

from __future__ import annotations

HIDE = [False]


def hiding() -> bool:
    return HIDE[0]
