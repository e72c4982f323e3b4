"""Attacks and bad input for the document formats (html in a warm headless Chromium, graphviz's dot, vega-lite's
warm vl-convert), one test each, against the Docker pool and the warm bubblewrap workers (and the plain
process fallback where the attack is about our own renderer code, not isolation).

Each HTML attack page writes what it managed into its own DOM; the renderer reports every text node it drew
(`RenderResult.texts`), so a test reads the page's own account and checks it against the host's (a loopback
listener that counts connections, files the page must not see). Persistence pairs run through a pool of ONE
worker, so the second job meets the same browser unless the first made the host retire it.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

from coco_agent.sandbox import RenderResult, SandboxLimits
from coco_agent.sandbox.base import STATUSES

LIMITS = SandboxLimits(timeout_s=12, memory_mb=512)
BWRAP = shutil.which("bwrap")
TOKEN = f"cocodoc{uuid.uuid4().hex[:10]}"
PLAIN = '<!doctype html><html><body style="margin:0;width:200px;height:80px"><p>fine</p></body></html>'


@pytest.fixture(scope="module")
def one_process() -> Iterator:
    from coco_agent.sandbox.launchers import ProcessLauncher
    from coco_agent.sandbox.pool import WarmPool

    pool = WarmPool(ProcessLauncher(), pool_size=0, max_jobs=1)
    yield pool
    pool.close()


ISOLATING = [
    pytest.param("docker", marks=pytest.mark.docker),
    pytest.param("gvisor", marks=pytest.mark.docker),
    "bwrap_warm",
]
EVERY = [*ISOLATING, "process"]


@pytest.fixture
def sandbox(request: pytest.FixtureRequest):
    return request.getfixturevalue(
        {
            "docker": "one_container",
            "gvisor": "one_gvisor_container",
            "bwrap_warm": "one_bwrap_worker",
            "process": "one_process",
        }[request.param]
    )


def _run(sandbox, code: str, fmt: str = "html", limits: SandboxLimits = LIMITS) -> RenderResult:
    result = sandbox.render(textwrap.dedent(code), fmt, limits)
    assert result.status in STATUSES
    assert (result.png is not None) == (result.status == "ok"), (result.status, result.error)
    return result


def _said(result: RenderResult) -> str:
    """Everything the page wrote into its DOM, as the renderer measured it."""
    assert result.status == "ok", (result.status, result.error[-600:])
    return " ".join(t["text"] for t in result.texts or [])


def _still_renders(sandbox) -> RenderResult:
    after = _run(sandbox, PLAIN)
    assert after.status == "ok" and "fine" in _said(after), after.error
    return after


# ---------------------------------------------------------------- CPU, memory, size


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_js_infinite_loop_times_out_and_the_browser_is_recycled(sandbox):
    result = _run(
        sandbox,
        "<html><body><p>x</p><script>while (true) {}</script></body></html>",
        limits=SandboxLimits(timeout_s=4, memory_mb=512),
    )
    assert result.status == "timeout", (result.status, result.error)
    _still_renders(sandbox)


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
@pytest.mark.parametrize(
    "bomb",
    [
        "const keep = []; while (true) keep.push(new Array(1 << 20).fill(Math.random()));",
        "const keep = []; while (true) keep.push(new Uint8Array(64 << 20).fill(1));",
    ],
    ids=["js-heap", "array-buffers"],
)
def test_html_js_memory_bomb(sandbox, bomb: str, request: pytest.FixtureRequest):
    """A page that eats memory is stopped. Under bubblewrap (no cgroup) the warm browser is not the job's
    process, so the worker counts what the browser grew by during the job against the job's limit: without
    that, a page took 16 GB of the host's memory here before V8 refused it and the page rendered."""
    result = _run(sandbox, f"<html><body><p>x</p><script>{bomb}</script></body></html>")
    assert result.status in {"oom", "error", "timeout"}, (result.status, result.error)
    if request.node.callspec.params["sandbox"] == "bwrap_warm":
        assert result.status == "oom", (result.status, result.error)  # V8's heap limit, or the worker's count
    _still_renders(sandbox)


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_giant_canvas_and_page(sandbox):
    page = """
        <html><head><meta name="viewport" content="width=100000, height=100000"></head>
        <body style="margin:0"><canvas id="c" width="30000" height="30000"></canvas>
        <p id="out">start</p>
        <script>
          const ctx = document.getElementById('c').getContext('2d');
          let said = 'no context';
          if (ctx) { ctx.fillStyle = 'red'; ctx.fillRect(0, 0, 30000, 30000); said = 'drawn'; }
          document.getElementById('out').textContent = 'canvas ' + said;
        </script></body></html>
    """
    result = _run(sandbox, page)
    assert result.status == "ok", result.error
    assert (result.width, result.height) == (2048, 2048)  # clamped, and said so
    assert "clamped to 2048" in result.extra["captured"]


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_page_that_never_finishes_loading(sandbox):
    page = """<html><body><p>waiting</p>
        <iframe srcdoc="<script>while (true) {}</script>"></iframe>
        <iframe src="data:text/html,<script>while(1){}</script>"></iframe></body></html>"""
    result = _run(sandbox, page, limits=SandboxLimits(timeout_s=4, memory_mb=512))
    assert result.status == "timeout", (result.status, result.error)
    assert "did not finish loading" in result.error or "deadline" in result.error
    _still_renders(sandbox)


# ---------------------------------------------------------------- network and files


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_reaches_no_network(sandbox, listener):
    port, accepted = listener
    url = f"http://127.0.0.1:{port}"
    page = f"""
        <html><body><p id="out">start</p>
        <img src="{url}/img.png"><link rel="stylesheet" href="{url}/s.css">
        <iframe src="{url}/frame"></iframe>
        <script>
          const out = [];
          const say = (s) => {{ out.push(s); document.getElementById('out').textContent = out.join(' '); }};
          fetch('{url}/fetch').then(() => say('FETCHED'), () => say('fetch-blocked'));
          try {{ const x = new XMLHttpRequest(); x.open('GET', '{url}/xhr', false); x.send(); say('XHR' + x.status); }}
          catch (e) {{ say('xhr-blocked'); }}
          try {{ const ws = new WebSocket('ws://127.0.0.1:{port}/ws');
                ws.onopen = () => say('WSOPEN'); ws.onerror = () => say('ws-blocked'); }}
          catch (e) {{ say('ws-refused'); }}
          navigator.sendBeacon && navigator.sendBeacon('{url}/beacon', 'x');
          new EventSource('{url}/events').onerror = () => say('es-blocked');
          window.open('{url}/popup');
        </script></body></html>
    """
    result = _run(sandbox, page)
    time.sleep(0.5)
    said = _said(result)
    assert accepted == [], f"the page reached the host's loopback: {accepted}; it said {said!r}"
    assert "FETCHED" not in said and "WSOPEN" not in said and "XHR200" not in said, said
    assert "fetch-blocked" in said


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_reads_no_files(sandbox, tmp_path):
    secret = tmp_path / f"{TOKEN}-secret.txt"
    secret.write_text(f"{TOKEN}-host-secret")
    page = f"""
        <html><body><p id="out">start</p>
        <iframe id="f" src="file://{secret}"></iframe><iframe src="file:///etc/hostname"></iframe>
        <img src="file:///usr/share/pixmaps/debian-logo.png">
        <script>
          const out = [];
          const say = (s) => {{ out.push(s); document.getElementById('out').textContent = out.join(' '); }};
          for (const path of ['file://{secret}', 'file:///etc/passwd', '/etc/passwd', '../graph.dot', 'program.py']) {{
            fetch(path).then(r => r.text()).then(t => say('READ:' + t.slice(0, 40)), () => say('blocked'));
          }}
          try {{ say('frame:' + document.getElementById('f').contentDocument.body.innerText); }}
          catch (e) {{ say('frame-closed'); }}
        </script></body></html>
    """
    result = _run(sandbox, page)
    said = _said(result)
    assert (
        TOKEN not in said.replace(f"file://{secret}", "") and "root:" not in said and "READ:" not in said
    ), said


# ---------------------------------------------------------------- persistence across jobs

PLANT = {
    "localStorage": f"(localStorage.setItem('k', '{TOKEN}'), 'planted')",
    "cookies": f"(document.cookie = 'k={TOKEN}; max-age=86400; path=/', 'planted')",
    "indexedDB": f"""new Promise((ok) => {{ const r = indexedDB.open('db', 1);
        r.onupgradeneeded = () => r.result.createObjectStore('s');
        r.onsuccess = () => {{ const t = r.result.transaction('s', 'readwrite'); t.objectStore('s').put('{TOKEN}', 'k');
        t.oncomplete = () => ok('planted'); }}; r.onerror = () => ok('no-idb'); }})""",
    "cache": f"caches.open('c').then(c => c.put('/k', new Response('{TOKEN}'))).then(() => 'planted', () => 'no-cache')",
    "serviceWorker": "navigator.serviceWorker.register('/sw.js').then(() => 'planted', () => 'refused')",
}
CHECK = {
    "localStorage": "localStorage.getItem('k') || 'empty'",
    "cookies": "document.cookie || 'empty'",
    "indexedDB": """new Promise((ok) => { const r = indexedDB.open('db', 1);
        r.onupgradeneeded = () => ok('empty'); r.onsuccess = () => { try {
        const q = r.result.transaction('s').objectStore('s').get('k'); q.onsuccess = () => ok(q.result || 'empty'); }
        catch (e) { ok('empty'); } }; r.onerror = () => ok('empty'); })""",
    "cache": "caches.keys().then(k => k.length ? 'caches:' + k.join(',') : 'empty')",
    "serviceWorker": "navigator.serviceWorker.getRegistrations().then(r => r.length ? 'registered' : 'empty')",
}


def _page(expression: str) -> str:
    return f"""<html><body><p id="out">start</p><script>
        window.cocoReady = Promise.resolve().then(() => {expression}).then(
            v => document.getElementById('out').textContent = 'R:' + v,
            e => document.getElementById('out').textContent = 'R:error ' + e);
        </script></body></html>"""


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
@pytest.mark.parametrize("store", list(PLANT))
def test_html_no_state_reaches_the_next_job(sandbox, store: str):
    planted = _run(sandbox, _page(PLANT[store]))
    said = _said(planted)
    assert "R:" in said, said
    checked = _run(sandbox, _page(CHECK[store]))
    seen = _said(checked)
    assert TOKEN not in seen and "registered" not in seen and "caches:" not in seen, seen
    assert "R:empty" in seen, seen
    if store in (
        "localStorage",
        "cookies",
        "indexedDB",
    ):  # these work within a job: the pair proves isolation
        assert "R:planted" in said, said
    # the same browser served both (else the pair proves less): the first job did not retire the worker
    assert not planted.extra.get("recycled"), planted.extra


@pytest.mark.docker
def test_html_downloads_are_denied(one_container):
    page = f"""<html><body><p>x</p><a id="a" download="{TOKEN}.txt" href="data:text/plain,{TOKEN}">d</a>
        <script>document.getElementById('a').click();</script></body></html>"""
    result = _run(one_container, page)
    assert result.status == "ok", result.error
    import docker

    container = docker.from_env().containers.get(result.extra["container"])
    found = container.exec_run(
        ["sh", "-c", f"grep -rl {TOKEN} /tmp 2>/dev/null; find / -name '{TOKEN}*' 2>/dev/null"]
    )
    assert TOKEN not in found.output.decode(errors="replace"), found.output


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
def test_html_popups_and_iframes_leave_nothing(sandbox):
    page = """<html><body><p>x</p><iframe srcdoc="<p>inner</p><script>window.open('about:blank')</script>"></iframe>
        <script>for (let i = 0; i < 20; i++) window.open('about:blank', '_blank');</script></body></html>"""
    result = _run(sandbox, page)
    assert result.status == "ok", result.error
    assert not result.extra.get("recycled"), result.extra  # the browser was checked clean after the job
    _still_renders(sandbox)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_without_html_or_body_renders_like_a_browser(sandbox):
    result = _run(sandbox, "<h1 style='font-size:40px'>Grand Opening</h1><p>Friday 8 PM</p>")
    assert "Grand Opening" in _said(result) and result.width == 1024


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_html_declared_size_is_used_and_clamped(sandbox):
    small = _run(
        sandbox,
        '<html><head><meta name="viewport" content="width=640, height=360"></head><body>a</body></html>',
    )
    assert (small.width, small.height) == (640, 360)
    body = _run(sandbox, "<html><body style='margin:0;width:300px;height:10px'>b</body></html>")
    assert (body.width, body.height) == (300, 64) and "height 10 px clamped to 64" in body.extra["captured"]
    huge = _run(sandbox, "<html><body style='margin:0;width:800px;height:100000px'>c</body></html>")
    assert (huge.width, huge.height) == (800, 2048) and "height 100000 px clamped to 2048" in huge.extra[
        "captured"
    ]


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_dot_syntax_error_is_dots_own_message(sandbox):
    result = _run(sandbox, "digraph G { a -> ; }", "graphviz")
    assert result.status == "error" and "syntax error in line 1" in result.error


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
def test_dot_file_attributes_are_refused(sandbox):
    result = _run(
        sandbox, 'digraph G { a [image="/etc/passwd"]; b [shapefile="/etc/hostname"]; }', "graphviz"
    )
    assert result.status == "error" and "names a file (image=" in result.error


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
def test_dot_that_runs_forever(sandbox):
    nodes = 400
    edges = " ".join(f"n{i} -> n{(i * 7 + j) % nodes};" for i in range(nodes) for j in range(1, 40))
    result = _run(
        sandbox,
        "digraph G { nslimit=1e9; mclimit=1e9; " + edges + " }",
        "graphviz",
        SandboxLimits(timeout_s=4),
    )
    assert result.status in {"timeout", "oom", "error"}, (result.status, result.error)
    after = _run(sandbox, "digraph G { a -> b; }", "graphviz")
    assert after.status == "ok", after.error


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
def test_dot_that_eats_memory(sandbox):
    result = _run(sandbox, 'digraph G { graph [size="1000,1000!", dpi=2400]; a -> b; }', "graphviz")
    assert result.status in {"oom", "error", "rejected"}, (result.status, result.error)
    assert _run(sandbox, "digraph G { a -> b; }", "graphviz").status == "ok"


@pytest.mark.parametrize("sandbox", EVERY, indirect=True)
@pytest.mark.parametrize(
    "data",
    [
        '{"url": "https://example.com/data.csv"}',
        '{"url": "file:///etc/passwd"}',
        '{"url": "data/cars.json"}',
    ],
    ids=["https", "file", "relative"],
)
def test_vega_lite_remote_data_is_refused(sandbox, data: str):
    spec = (
        '{"data": ' + data + ', "mark": "point", "encoding": {"x": {"field": "a", "type": "quantitative"}}}'
    )
    result = _run(sandbox, spec, "vega-lite")
    assert result.status == "error" and "remote and file data are refused" in result.error, result.error


@pytest.mark.parametrize("sandbox", ISOLATING, indirect=True)
def test_vega_lite_memory_bomb(sandbox):
    spec = (
        '{"data": {"sequence": {"start": 0, "stop": 300000000}}, "mark": "point", '
        '"encoding": {"x": {"field": "data", "type": "quantitative"}}}'
    )
    result = _run(sandbox, spec, "vega-lite", SandboxLimits(timeout_s=8, memory_mb=512))
    assert result.status in {"oom", "error", "timeout"}, (result.status, result.error)
    again = _run(
        sandbox,
        '{"data": {"values": [{"a": 1}]}, "mark": "point", "encoding": {"x": {"field": "a", "type": "quantitative"}}}',
        "vega-lite",
    )
    assert again.status == "ok", again.error


@pytest.mark.parametrize("sandbox", ["bwrap_warm"], indirect=True)
def test_a_worker_with_a_browser_refuses_python_programs(sandbox):
    """The host keys workers apart by the service their format needs; the worker refuses a Python job where a
    browser runs all the same (a job beside a browser of the same uid could read its memory)."""
    from coco_agent.sandbox.protocol import encode_frame

    launcher = sandbox.launcher
    worker = launcher.start("html", 5)
    try:
        worker.send(encode_frame(launcher.job(worker, "matplotlib", LIMITS), b"print('hello')\n"))
        header, _, why = worker.read_frame(time.monotonic() + 30)
        assert header is not None, why
        assert header["status"] == "error" and "document formats only" in header["error"]
    finally:
        launcher.stop(worker)


# ---------------------------------------------------------------- who runs what under gVisor


@pytest.mark.docker
def test_gvisor_runs_the_worker_the_browser_and_each_job_as_users_of_their_own(one_gvisor_container):
    """gVisor's /proc ignores PR_SET_DUMPABLE, so there the worker is root (gVisor's) with a few capabilities,
    the warm browser runs as the sandbox user and each job as the job user: none can open another's pipes."""
    import docker

    from coco_agent.sandbox.image import JOB_UID, SANDBOX_UID

    page = _run(one_gvisor_container, "<html><body><p>who</p></body></html>")
    assert page.status == "ok", page.error
    container = docker.from_env().containers.get(page.extra["container"])
    listing = container.exec_run(
        [
            "sh",
            "-c",
            "for s in /proc/[0-9]*/status; do grep -E '^(Name|Uid|CapEff):' $s | tr '\\n' ' '; echo; done",
        ]
    ).output.decode(errors="replace")
    rows = [line.split() for line in listing.splitlines() if line.strip()]
    uids = {}  # process name -> the set of its real uids
    for row in rows:
        name, uid = row[row.index("Name:") + 1], row[row.index("Uid:") + 1]
        uids.setdefault(name, set()).add(int(uid))
        if uid != "0" and "CapEff:" in row:
            assert int(row[row.index("CapEff:") + 1], 16) == 0, row
    assert uids.get("python3") == {0}, listing  # the zygote (PID 1) and nothing else of Python
    browser = {uid for name, found in uids.items() if "chrom" in name for uid in found}
    assert browser == {SANDBOX_UID}, listing
    job = one_gvisor_container.render(
        "import os, json\nprint(json.dumps([os.getresuid(), os.getresgid(), os.getgroups()]))\n",
        "matplotlib",
        LIMITS,
    )
    assert json.loads(job.stdout.strip().splitlines()[-1]) == [[JOB_UID] * 3, [JOB_UID] * 3, []]
