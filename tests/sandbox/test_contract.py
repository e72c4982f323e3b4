"""The sandbox contract, over every format and every backend: what a render returns, whatever draws it and
wherever it runs. A new format must bring a sample here (the first test fails until it does); a new backend
joins BACKEND_FIXTURES."""

from __future__ import annotations

import shutil

import pytest

from coco_agent import formats
from coco_agent.sandbox import RenderResult, SandboxLimits, decode_png
from coco_agent.sandbox.base import STATUSES

LIMITS = SandboxLimits(timeout_s=30)
SAMPLES = {  # per format: a program that draws the word "Sales" and is known to render
    "matplotlib": "import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3))\nplt.bar(['a', 'b'], [1, 2])\n"
    "plt.title('Sales')\n",
    "pil": "from PIL import Image, ImageDraw\nimage = Image.new('RGB', (200, 120), 'white')\n"
    "ImageDraw.Draw(image).text((20, 40), 'Sales', fill='black')\n",
    "svg": '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="120"><rect width="200" height="120" '
    'fill="white"/><text x="20" y="60" font-size="24" font-family="DejaVu Sans">Sales</text></svg>',
    "html": '<!doctype html><html><head><meta name="viewport" content="width=300, height=120"></head>'
    '<body style="margin:0"><h1 style="font:32px DejaVu Sans">Sales</h1></body></html>',
    "graphviz": "digraph G { Sales -> Profit; }",
    "vega-lite": '{"data": {"values": [{"q": "Q1", "v": 3}, {"q": "Q2", "v": 5}]}, "mark": "bar", '
    '"title": "Sales", "encoding": {"x": {"field": "q", "type": "nominal"}, '
    '"y": {"field": "v", "type": "quantitative"}}}',
}
BROKEN = {
    "matplotlib": "1 / 0\n",
    "pil": "import PIL\nraise ValueError('no')\n",
    "svg": "<svg><unclosed",
    "html": "<html><body><script>throw new Error('no')</script></body></html>",  # draws nothing, says why
    "graphviz": "digraph G { a -> ; }",
    "vega-lite": '{"mark": "bar", "data": {"values": [1]}, "encoding": {"x": {"field": 3}}, "transform": 7}',
}
NOTHING = {
    "matplotlib": "x = 1\n",
    "pil": "from PIL import Image\n",
    "svg": "print('no svg here')\n",
    "html": "print('no page here')\n",
    "graphviz": "digraph G { }",
    "vega-lite": "print('no spec here')\n",
}
BACKEND_FIXTURES = {
    "docker": "docker_sandbox",
    "docker_per_job": "docker_oneshot_sandbox",
    "gvisor": "gvisor_sandbox",
    "bwrap_warm": "contract_bwrap_warm",
    "process": "process_sandbox",
}


@pytest.fixture(scope="module")
def contract_bwrap_warm():
    if not shutil.which("bwrap"):
        pytest.skip("bubblewrap is not installed (optional)")
    from coco_agent.sandbox.launchers import BwrapLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(BwrapLauncher(), pool_size=1, max_workers=1)
    yield pool
    pool.close()


def _backends():
    return [
        pytest.param(
            name, marks=[pytest.mark.docker] if name.startswith(("docker", "gvisor")) else [], id=name
        )
        for name in BACKEND_FIXTURES
    ]


@pytest.fixture(params=_backends())
def backend(request):
    return request.getfixturevalue(BACKEND_FIXTURES[request.param])


def test_every_format_has_samples():
    assert set(SAMPLES) == set(BROKEN) == set(NOTHING) == set(formats.names())


def _contract(result: RenderResult, kind: str) -> None:
    assert result.status in STATUSES and result.sandbox == kind
    assert (result.png is not None) == result.ok
    assert isinstance(result.error, str) and isinstance(result.stdout, str) and result.seconds >= 0


@pytest.mark.parametrize("fmt", formats.names())
def test_a_sample_renders(backend, fmt: str):
    result = backend.render(SAMPLES[fmt], fmt, LIMITS)
    _contract(result, backend.kind)
    assert result.status == "ok", result.error
    image = decode_png(result.png, LIMITS.max_pixels, LIMITS.max_png_bytes)
    assert (image.width, image.height) == (result.width, result.height)
    assert result.text_boxes is None or all(
        0 <= x0 < x1 <= result.width and 0 <= y0 < y1 <= result.height for x0, y0, x1, y1 in result.text_boxes
    )
    assert result.text_boxes, f"{fmt} reported no box around its text"


@pytest.mark.parametrize("fmt", formats.names())
def test_a_broken_program_is_an_error_with_its_reason(backend, fmt: str):
    result = backend.render(BROKEN[fmt], fmt, LIMITS)
    _contract(result, backend.kind)
    assert result.status in {"error", "no_image"} and result.error, (result.status, result.error)


@pytest.mark.parametrize("fmt", formats.names())
def test_a_program_that_draws_nothing(backend, fmt: str):
    result = backend.render(NOTHING[fmt], fmt, LIMITS)
    _contract(result, backend.kind)
    assert result.status == "no_image", (result.status, result.error)
