"""Drafts read back from disk (checks, critic, message images) go through the host's checked PNG decoder.

A draft on disk may not be what the sandbox returned: it may have been replaced between rounds, or come from an
older run on resume (stored as sent, before the host re-encoded drafts). `StoredAsSent` plays that sandbox: it
hands back the hostile bytes as an ok result. The checks must refuse what the decoder refuses (and retry), the
critic must see the re-encoded default image or nothing, and no step may crash or spend long on the file.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from support import hostile_png
from support.fixtures_models import ScriptedChatModel
from support.png_checks import assert_fresh, chunk_types, pillow_default_image
from support.programs import ACCEPT, GOOD_BARS

import coco_agent.nodes.check as check_node
import coco_agent.sandbox as sandbox_registry
from coco_agent.context import RunContext
from coco_agent.models.content import content_parts
from coco_agent.runner import start_run
from coco_agent.sandbox import RenderResult
from coco_agent.sandbox.png import png_size
from coco_agent.trace import read_trace

PROMPT = "A colourful pattern"
PROGRAM = "```python\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n```"
GOOD = hostile_png.image(200, 150)
REFUSED = {
    "many_chunks": hostile_png.image(200, 150, before=hostile_png.chunk(b"prVt", b"") * 9000),
    "unknown_critical": hostile_png.image(200, 150, before=hostile_png.chunk(b"HTML", hostile_png.HTML)),
}


class StoredAsSent:
    """A sandbox that returns the given PNG bytes as they are, one per render (the last one repeats)."""

    kind = "process"

    def __init__(self, *pngs: bytes) -> None:
        self.pngs = list(pngs)

    def render(self, code, fmt, limits=None) -> RenderResult:
        png = self.pngs.pop(0) if len(self.pngs) > 1 else self.pngs[0]
        width, height = png_size(png)
        return RenderResult(status="ok", png=png, width=width, height=height, sandbox="stored-as-sent")

    def close(self) -> None:
        pass


def run(tmp_path: Path, coder: list, critic: list) -> tuple[dict, Path, ScriptedChatModel, ScriptedChatModel]:
    coder_model, critic_model = ScriptedChatModel(replies=coder), ScriptedChatModel(replies=critic)
    ctx = RunContext(llm=coder_model, vlm=critic_model, sandbox="process", max_rounds=2)
    result = start_run(PROMPT, ctx, tmp_path / "run")
    return result, tmp_path / "run", coder_model, critic_model


def sent_png(critic: ScriptedChatModel, call: int) -> bytes:
    url = critic.image_blocks(call)[0]["image_url"]["url"]
    return base64.b64decode(url.removeprefix("data:image/png;base64,"))


def test_critic_sees_the_decoded_default_image_of_an_apng(tmp_path, monkeypatch):
    """An APNG draft on disk: the checks and the critic see the default image, re-encoded, not the file."""
    apng = hostile_png.apng(200, 150)
    monkeypatch.setitem(sandbox_registry._cache, "process", StoredAsSent(apng))
    result, run_dir, _, critic = run(tmp_path, [PROGRAM], [ACCEPT])
    assert result["status"] == "accepted" and result["rounds"] == 1, result
    assert (run_dir / "attempts/01/draft.png").read_bytes() == apng  # the file as that sandbox left it
    sent = sent_png(critic, 0)
    assert_fresh(sent, apng)
    assert b"acTL" not in sent and b"fdAT" not in sent


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_checks_refuse_a_draft_the_decoder_refuses(tmp_path, monkeypatch, case):
    """9000 empty chunks, an unknown critical chunk: the checks fail with the reason (no crash, no critic call),
    quickly, and the next round's clean draft is accepted."""
    monkeypatch.setitem(sandbox_registry._cache, "process", StoredAsSent(REFUSED[case], GOOD))
    result, run_dir, coder, critic = run(tmp_path, [PROGRAM, PROGRAM], [ACCEPT])
    assert result["status"] == "accepted" and result["rounds"] == 2, result
    assert result["attempts"][0]["checks_ok"] is False
    (check,) = [t for t in read_trace(run_dir) if t["node"] == "check" and t["round"] == 1]
    assert "could not be read back" in check["checks"][0] and check["seconds"] < 0.5
    assert critic.calls == 1
    assert_fresh(sent_png(critic, 0), GOOD)
    feedback = coder.received[1][-1].content
    assert "could not be read back" in (feedback if isinstance(feedback, str) else json.dumps(feedback))


def test_draft_replaced_after_the_checks(tmp_path, monkeypatch):
    """The draft is swapped for a PNG the decoder refuses after the checks passed: the critic is not called on
    it, critique.json says why, the round counts as failed and the next one is judged on its own draft."""
    real = check_node.check_draft
    swapped: list[int] = []

    def check_then_swap(image):
        result = real(image)
        if not swapped:
            drafts = sorted(tmp_path.glob("run/attempts/*/draft.png"))
            drafts[-1].write_bytes(REFUSED["many_chunks"])
            swapped.append(1)
        return result

    monkeypatch.setattr(check_node, "check_draft", check_then_swap)
    result, run_dir, coder, critic = run(tmp_path, [GOOD_BARS, GOOD_BARS], [ACCEPT])
    assert result["status"] == "accepted" and result["rounds"] == 2, result
    assert critic.calls == 1  # round 2 only
    critique = json.loads((run_dir / "attempts/01/critique.json").read_text())
    assert critique["source"] == "refused" and "more than 8192 chunks" in critique["summary"]
    assert result["attempts"][0]["checks_ok"] is False
    assert ("critique", 1, "write_code") in [
        (t["node"], t.get("round"), t.get("decision")) for t in read_trace(run_dir)
    ]
    assert set(chunk_types(sent_png(critic, 0))) <= {b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS"}


def test_final_is_the_decoded_draft(tmp_path, monkeypatch):
    """Without a refiner the final image is the draft as the host decodes it: an APNG draft on disk becomes a
    final.png of its default image alone, re-encoded (never the file's hidden frames or extra chunks)."""
    apng = hostile_png.apng(200, 150)
    monkeypatch.setitem(sandbox_registry._cache, "process", StoredAsSent(apng))
    result, run_dir, _, _ = run(tmp_path, [PROGRAM], [ACCEPT])
    assert result["status"] == "accepted" and result["paths"]["final"] == "final.png", result
    final = (run_dir / "final.png").read_bytes()
    assert_fresh(final, apng)
    assert set(chunk_types(final)) <= {b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS"}


def test_no_final_when_the_draft_cannot_be_read_back(tmp_path, monkeypatch):
    """The chosen draft replaced by a PNG the decoder refuses before refinement: no final.png, and
    result.json says why, instead of a copy of the refused file."""
    import coco_agent.nodes.refine as refine_node

    real = refine_node.refine_and_verify

    def swap_first(state, ctx, draft_path, run_dir):
        draft_path.write_bytes(REFUSED["unknown_critical"])
        return real(state, ctx, draft_path, run_dir)

    monkeypatch.setattr(refine_node, "refine_and_verify", swap_first)
    monkeypatch.setitem(sandbox_registry._cache, "process", StoredAsSent(GOOD))
    coder_model, critic_model = ScriptedChatModel(replies=[PROGRAM]), ScriptedChatModel(replies=[ACCEPT])
    ctx = RunContext(llm=coder_model, vlm=critic_model, sandbox="process", max_rounds=1, refiner="tiny-test")
    result = start_run(PROMPT, ctx, tmp_path / "run")
    assert not (tmp_path / "run/final.png").exists()
    assert result["paths"]["final"] is None, result["paths"]
    assert "cannot be read back" in result["refinement"]["why"], result["refinement"]


def _data_url(png: bytes) -> dict:
    return {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(png).decode()},
    }


def test_message_images_decode_through_the_checked_decoder():
    """Images in chat messages (what a local VLM adapter decodes): the default image of an APNG, and a PNG the
    chunk walk refuses ends as a ValueError at once, not after Pillow walked 100k chunks."""
    parts = content_parts([{"type": "text", "text": "look"}, _data_url(hostile_png.apng())])
    assert parts[1].tobytes() == pillow_default_image(hostile_png.apng()).convert("RGB").tobytes()
    for bad in (hostile_png.many_chunks(), hostile_png.unknown_critical()):
        started = time.process_time()
        with pytest.raises(ValueError, match="chunk"):
            content_parts([_data_url(bad)])
        assert time.process_time() - started < 0.1
