"""A job forges its own result frame with hostile PNG bytes: the host keeps a fresh PNG of what it decoded.

The program runs in the worker's forked child, whose result pipe stays open: it builds a hostile PNG (with
tests/support/hostile_png.py, shipped in its source) and writes it, claiming "ok", as its own result frame. Against the
Docker pool (marker docker), the warm bubblewrap workers and the plain process sandbox. What comes back, and the
attempts/NN/draft.png a run writes, must be a fresh PNG re-encoded from the pixels Pillow decoded; PNGs whose
chunks would cost the host's decoder must be refused before Pillow sees them.
"""

from __future__ import annotations

import base64
import inspect
import shutil
from collections.abc import Iterator

import pytest
from support import hostile_png
from support.fixtures_models import ScriptedChatModel
from support.png_checks import assert_fresh
from support.programs import ACCEPT, forge_result

import coco_agent.sandbox as sandbox_registry
from coco_agent.context import RunContext
from coco_agent.runner import start_run
from coco_agent.sandbox import RenderResult, SandboxLimits
from coco_agent.sandbox import png as png_module
from coco_agent.sandbox.base import STATUSES

LIMITS = SandboxLimits(timeout_s=20, memory_mb=512)
KINDS = [pytest.param("docker", marks=pytest.mark.docker, id="docker"), "bwrap_warm", "process"]
REGISTRY_NAME = {"docker": "docker", "bwrap_warm": "bubblewrap", "process": "process"}


@pytest.fixture(scope="module")
def bwrap_warm_sandbox() -> Iterator:
    """The warm bubblewrap workers (skipped where bubblewrap is missing or cannot make namespaces)."""
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (optional)")
    sandbox = WarmPool(BwrapLauncher(), pool_size=1, max_workers=2)
    probe = sandbox.render("x = 1\n", "matplotlib", LIMITS)
    if probe.status != "no_image":
        sandbox.close()
        pytest.skip(f"bubblewrap cannot run here: {probe.error[-300:]}")
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def plain_sandbox():
    from coco_agent.sandbox.launchers import ProcessLauncher
    from coco_agent.sandbox.pool import WarmPool

    return WarmPool(ProcessLauncher(startup_grace_s=5), pool_size=0, max_jobs=1)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest):
    name = {"docker": "docker_sandbox", "bwrap_warm": "bwrap_warm_sandbox", "process": "plain_sandbox"}
    return request.getfixturevalue(name[request.param])


def forge(builder: str, *args: object) -> str:
    """A program that builds `hostile_png.<builder>(*args)` and writes it as its own "ok" result frame."""
    header = {"status": "ok", "error": "", "captured": "forged"}
    return forge_result(header, f"{builder}(*{args!r})", prelude=inspect.getsource(hostile_png))


def render(sandbox, code: str, limits: SandboxLimits = LIMITS) -> RenderResult:
    result = sandbox.render(code, "matplotlib", limits)
    assert result.status in STATUSES
    assert (result.png is not None) == (result.status == "ok"), (result.status, result.error)
    return result


@pytest.mark.parametrize("case", sorted(hostile_png.CASES))
@pytest.mark.parametrize("sandbox", KINDS, indirect=True)
def test_forged_png_is_reencoded(sandbox, case):
    """HTML in tEXt, metadata chunks, data after IEND, an APNG with a hidden frame: the host keeps only the
    pixels it decoded, as a fresh PNG."""
    result = render(sandbox, forge(case))
    assert result.status == "ok", (result.status, result.error)
    assert result.extra.get("captured") == "forged"  # the job's own frame, not the worker's capture
    original = hostile_png.CASES[case]()
    assert_fresh(result.png, original)
    assert hostile_png.HTML not in result.png
    assert (result.width, result.height) == (64, 48)


@pytest.fixture
def no_decoding(monkeypatch):
    """Count the times Pillow is asked to decode anything on the host."""
    calls: list = []
    real = png_module.Image.open

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(png_module.Image, "open", counted)
    return calls


@pytest.mark.parametrize(
    "case, why",
    [
        ("many_chunks", "more than 8192 chunks"),
        ("split_idat", "more than 8192 chunks"),
        ("unknown_critical", "unknown critical chunk 'HTML'"),
    ],
)
@pytest.mark.parametrize("sandbox", KINDS, indirect=True)
def test_forged_png_refused_before_decoding(sandbox, case, why, no_decoding):
    """100k empty chunks, the pixels split over 100k IDAT chunks, an unknown critical chunk: rejected from
    the chunk walk, Pillow never called (the walk's own cost is measured by scripts/bench_png.py)."""
    code = forge(case)
    render(sandbox, "x = 1\n")  # a warm worker (the pools start theirs lazily)
    result = render(sandbox, code)
    assert result.status == "rejected", (result.status, result.error)
    assert why in result.error
    assert no_decoding == []
    assert render(sandbox, "x = 1\n").status == "no_image"  # the worker still serves the next job


@pytest.mark.parametrize("sandbox", KINDS, indirect=True)
def test_forged_png_at_the_size_cap(sandbox):
    """A PNG of exactly max_png_bytes (padded with a private chunk) is kept, re-encoded without the padding;
    one byte more is refused before decoding."""
    limits = SandboxLimits(timeout_s=20, memory_mb=512, max_png_bytes=300_000)
    result = render(sandbox, forge("padded", 300_000), limits)
    assert result.status == "ok", (result.status, result.error)
    assert_fresh(result.png, hostile_png.padded(300_000))
    assert len(result.png) < 20_000
    over = render(sandbox, forge("padded", 300_001), limits)
    assert over.status == "rejected" and "300000-byte limit" in over.error, (over.status, over.error)


@pytest.mark.parametrize("sandbox", KINDS, indirect=True)
def test_run_keeps_the_decoded_draft(sandbox, request, monkeypatch, tmp_path):
    """A whole run whose program forges an APNG: attempts/01/draft.png and final.png hold the fresh PNG of the
    default image, and that is what the critic received."""
    kind = REGISTRY_NAME[request.node.callspec.params["sandbox"]]
    monkeypatch.setitem(sandbox_registry._cache, kind, sandbox)
    coder = ScriptedChatModel(replies=["```python\n" + forge("apng", 200, 150) + "```"])
    critic = ScriptedChatModel(replies=[ACCEPT])
    ctx = RunContext(llm=coder, vlm=critic, sandbox=kind, timeout_s=20, memory_mb=512)
    result = start_run("A pattern", ctx, tmp_path / "run")
    assert result["status"] == "accepted", result
    run_dir = tmp_path / "run"
    draft = (run_dir / "attempts/01/draft.png").read_bytes()
    original = hostile_png.apng(200, 150)
    assert_fresh(draft, original)
    assert (run_dir / "final.png").read_bytes() == draft
    url = critic.image_blocks(0)[0]["image_url"]["url"]
    assert base64.b64decode(url.removeprefix("data:image/png;base64,")) == draft
