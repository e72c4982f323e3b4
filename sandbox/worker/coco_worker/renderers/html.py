"""HTML: one self-contained HTML document, rendered by a warm headless Chromium and screenshotted as PNG.

The zygote starts Chromium at preload (a service: coco_worker/services.py), headless, without its own sandbox
(it cannot run in a container without capabilities: the container is the wall), on a pipe, with every
network path dead (a proxy that goes nowhere, every host name unresolvable; the container has no network
anyway). Each job, in its own process: a fresh browser context (no storage, cache, cookies or service worker
of another job), a page whose every request is intercepted (the document itself is served from the
interception; everything else that is not data: or about: fails), downloads denied, popups closed, the
viewport from the document's declared size (clamped to 64-2048 px), load and fonts awaited, a screenshot,
the text geometry from the DOM (every text node's string, box, container box and font size), the context
disposed. After the job the runner asks `check()` whether the browser is as it was (answers, no stray
context or target); on any doubt the worker is retired.

Declared size: ``<meta name="viewport" content="width=W, height=H">``, else the ``body``'s CSS width and
height in px, else 1024 px wide and as tall as the content (a full-page screenshot). A page that draws
asynchronously may set ``window.cocoReady`` to a promise: the screenshot waits for it (within the deadline).
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import sys
import time

from coco_worker import hidden_text, services
from coco_worker.capture import DocumentError
from coco_worker.cdp import Cdp, CdpError
from coco_worker.pixels import check_pixels
from coco_worker.protocol import MAX_TEXT_CHARS, MAX_TEXTS
from coco_worker.textboxes import png_dimensions

NAME = "html"
FALLBACKS = ()
DOCUMENT_ONLY = True  # never runs a Python program
HIDES_TEXT = True  # with hide_text, glyphs, their shadows, strokes and decorations are made transparent
CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
DOC_URL = "https://document.coco.invalid/"
MIN_SIDE, MAX_SIDE, DEFAULT_WIDTH = 64, 2048, 1024
PROFILE = (
    "/tmp/.coco-chromium"  # + "-<zygote pid>": workers sharing one /tmp (process sandbox) never share it
)
FLAGS = [
    "--headless",
    "--no-sandbox",  # Chromium's sandbox needs namespaces or setuid, which the container withholds
    "--remote-debugging-pipe",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider,AutofillServerCommunication",
    "--mute-audio",
    "--hide-scrollbars",
    "--font-render-hinting=none",
    "--force-color-profile=srgb",
    "--proxy-server=socks5://127.0.0.1:9",  # no route anywhere, loopback included (<-loopback>)
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--js-flags=--max-old-space-size=384",
    "about:blank",
]
CHROMIUM_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
_MARKUP = re.compile(r"<\s*[A-Za-z!/?]")


class Hooks:
    """HTML runs no Python program: nothing to hook."""

    def __init__(self, capture) -> None:
        self.capture = capture

    def install(self) -> None:
        """Nothing to hook."""

    def found(self, namespace: dict, job_dir: str):
        return None


def chromium_path() -> str:
    found = os.environ.get("COCO_CHROMIUM") or next((p for p in CHROMIUM if os.access(p, os.X_OK)), "")
    if not found:
        raise RuntimeError("Chromium is not installed here (apt-get install chromium)")
    return found


def preload(full_warm_up: bool = True) -> None:
    """Start the warm browser (a service of the zygote) and note its targets, so `check()` can compare."""
    profile = f"{PROFILE}-{os.getpid()}"
    env = dict(
        CHROMIUM_ENV, HOME=profile, **{k: os.environ[k] for k in ("FONTCONFIG_PATH",) if k in os.environ}
    )
    argv = [chromium_path(), f"--user-data-dir={profile}", *FLAGS]
    service = services.start(NAME, argv, env, folder=profile)
    cdp = Cdp(service.from_service, service.to_service, first_id=1_000_000_000)
    cdp.deadline = time.monotonic() + 30
    try:
        cdp.call("Browser.getVersion")
        targets = cdp.call("Target.getTargets").get("targetInfos", [])
    except CdpError as exc:
        services.kill_all()
        raise RuntimeError(f"headless Chromium did not start: {exc}") from None
    service.state["targets"] = sorted(t.get("targetId", "") for t in targets if isinstance(t, dict))
    service.state["next_id"] = cdp.next_id
    if full_warm_up:  # one render, so fonts and the renderer's code are warm for the first job
        try:
            render_document(
                "<html><body style='width:200px;height:80px'>Ag 1.0 中文</body></html>", {"timeout": 20}
            )
        except Exception as exc:
            services.kill_all()
            raise RuntimeError(f"headless Chromium could not render a warm-up page: {exc}") from None


def job_fds() -> list[int]:
    service = services.SERVICES.get(NAME)
    return [service.to_service, service.from_service] if service else []


def check() -> str:
    """After a job: '' when the browser answers and holds no context or target beyond its own, else why."""
    service = services.SERVICES.get(NAME)
    if service is None or not service.alive():
        return "the warm browser is gone"
    cdp = Cdp(service.from_service, service.to_service, first_id=1_500_000_000)  # ids are int32
    cdp.deadline = time.monotonic() + 5
    try:
        cdp.drain()
        contexts = cdp.call("Target.getBrowserContexts").get("browserContextIds", [])
        targets = cdp.call("Target.getTargets").get("targetInfos", [])
    except CdpError as exc:
        return f"the warm browser did not answer after the job ({exc})"
    if contexts:
        return f"the job left {len(contexts)} browser context(s) behind"
    ids = sorted(t.get("targetId", "") for t in targets if isinstance(t, dict))
    if ids != service.state.get("targets"):
        return f"the browser holds {len(ids)} target(s), not the {len(service.state.get('targets', []))} it started with"
    return ""


def document(source: str, limits: dict):
    """Render the job's HTML document (every job of this format is one: no Python runs here). A text with no
    markup at all is not one (drew nothing); a fragment without <html>/<body> is, as in any browser."""
    if not _MARKUP.search(source[:200_000]):
        raise NotADocument(
            "the program is not an HTML document (no tags found); answer with one self-contained HTML page"
        )
    return render_document(source, limits)


class NotADocument(DocumentError):
    status = "no_image"


def render_document(source: str, limits: dict):
    service = services.SERVICES.get(NAME)
    if service is None:
        raise DocumentError("the html renderer's browser is not running in this worker")
    timeout = float(limits.get("timeout", 30.0))
    page = Page(service, time.monotonic() + max(1.0, timeout - 0.75))
    try:
        return page.render(source, int(limits.get("max_pixels", 40_000_000)))
    except CdpError as exc:
        if time.monotonic() >= page.cdp.deadline:  # the job's time ran out, whatever step it was at
            raise PageTimeout(f"the page was not drawn before the deadline ({exc})") from None
        raise DocumentError(f"the browser failed while drawing the page: {exc}") from None
    finally:
        page.close()


class Page:
    """One job's browser context and page, driven to a screenshot and the text geometry."""

    def __init__(self, service, deadline: float) -> None:
        self.cdp = Cdp(service.from_service, service.to_service, first_id=1000)
        self.cdp.deadline = deadline
        self.cdp.on_event = self.event
        self.context = self.target = self.session = ""
        self.loaded = self.crashed = False
        self.document = b""
        self.blocked = self.popups = 0
        self.errors: list[str] = []  # uncaught script errors (the code writer hears them)

    # ------------------------------------------------------------ events
    def event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params") or {}
        session = message.get("sessionId")
        if method == "Fetch.requestPaused":
            request = params.get("request") or {}
            if request.get("url") == DOC_URL and params.get("resourceType") == "Document" and self.document:
                body, self.document = base64.b64encode(self.document).decode(), b""  # served once
                headers = [{"name": "Content-Type", "value": "text/html; charset=utf-8"}]
                self.cdp.send(
                    "Fetch.fulfillRequest",
                    {
                        "requestId": params.get("requestId"),
                        "responseCode": 200,
                        "responseHeaders": headers,
                        "body": body,
                    },
                    session,
                )
            else:
                self.blocked += 1
                self.cdp.send(
                    "Fetch.failRequest",
                    {"requestId": params.get("requestId"), "errorReason": "BlockedByClient"},
                    session,
                )
        elif method == "Target.attachedToTarget":  # an iframe or worker of the page: intercept it too
            child = params.get("sessionId")
            if child:
                self.cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, child)
                self.cdp.send("Runtime.runIfWaitingForDebugger", {}, child)
        elif method == "Target.targetCreated":
            info = params.get("targetInfo") or {}
            popup = info.get("browserContextId") == self.context and info.get("openerId")
            if popup and info.get("type") == "page":  # window.open: closed before it can do anything
                self.popups += 1
                self.cdp.send("Target.closeTarget", {"targetId": info.get("targetId")})
        elif method == "Page.loadEventFired" and session == self.session:
            self.loaded = True
        elif method in ("Inspector.targetCrashed", "Target.targetCrashed"):
            self.crashed = True
        elif method == "Runtime.exceptionThrown" and len(self.errors) < 5:
            details = params.get("exceptionDetails") or {}
            text = (details.get("exception") or {}).get("description") or details.get("text") or "error"
            self.errors.append(f"line {details.get('lineNumber', 0) + 1}: {str(text)[:300]}")

    # ------------------------------------------------------------ the job
    def render(self, source: str, max_pixels: int):
        cdp = self.cdp
        self.document = source.encode("utf-8", "surrogatepass")
        self.context = cdp.call("Target.createBrowserContext", {"disposeOnDetach": False})["browserContextId"]
        cdp.call("Browser.setDownloadBehavior", {"behavior": "deny", "browserContextId": self.context})
        cdp.call("Target.setDiscoverTargets", {"discover": True})
        self.target = cdp.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": self.context}
        )["targetId"]
        self.session = cdp.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})[
            "sessionId"
        ]
        s = self.session
        cdp.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, s)
        cdp.call(
            "Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": True, "flatten": True}, s
        )
        cdp.call("Page.enable", {}, s)
        cdp.call("Inspector.enable", {}, s)
        cdp.call("Runtime.enable", {}, s)
        self.metrics(DEFAULT_WIDTH, 768)
        cdp.call("Page.navigate", {"url": DOC_URL}, s)
        try:
            cdp.wait_for(lambda: self.loaded or self.crashed)
            if not self.crashed:
                self.evaluate(SETTLED_SCRIPT, await_promise=True)
        except CdpError as exc:
            if "in time" in str(exc):
                raise PageTimeout(
                    "the page did not finish loading and drawing before the deadline (a script that never "
                    "ends, or a resource that never loads)"
                ) from None
            raise
        if self.crashed:
            raise PageCrashed("the page crashed the browser's renderer (most likely it ran out of memory)")
        size = self.evaluate(SIZE_SCRIPT) or {}
        width, height, note = declared_size(size)
        self.metrics(width, height)
        if size.get("height") is None:  # no declared height: as tall as the content at this width
            content = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or height
            width, height, more = declared_size({"width": width, "height": content})
            note = note or more
            self.metrics(width, height)
        check_pixels(width, height, max_pixels, "HTML page")
        if self.errors:
            print("uncaught script errors:\n" + "\n".join(self.errors), file=sys.stderr)
        if not self.evaluate(CONTENT_SCRIPT):
            said = f"; its scripts failed: {'; '.join(self.errors)}" if self.errors else ""
            raise NotADocument(f"the page shows nothing (no text and no element with a size){said}")
        texts = (
            self.evaluate(
                GEOMETRY_SCRIPT.replace("MAX_TEXTS", str(MAX_TEXTS)).replace("MAX_CHARS", str(MAX_TEXT_CHARS))
            )
            or []
        )
        if hidden_text.hiding():
            self.evaluate(HIDE_TEXT_SCRIPT, await_promise=True)
        shot = self.cdp.call(
            "Page.captureScreenshot",
            {
                "format": "png",
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
                "captureBeyondViewport": True,
                "fromSurface": True,
            },
            s,
        )
        if self.crashed:
            raise PageCrashed("the page crashed the browser's renderer (most likely it ran out of memory)")
        png = base64.b64decode(shot.get("data", ""), validate=False)
        if png_dimensions(png) is None:
            raise DocumentError("the browser returned no PNG screenshot")
        how = f"html {width}x{height}" + (f" ({note})" if note else "")
        boxes = [t["box"] for t in texts if isinstance(t, dict) and isinstance(t.get("box"), list)]
        return png, how, boxes, {"texts": texts}

    def metrics(self, width: int, height: int) -> None:
        self.cdp.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )

    def evaluate(self, expression: str, await_promise: bool = False):
        result = self.cdp.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            self.session,
        )
        if result.get("exceptionDetails"):
            return None
        return (result.get("result") or {}).get("value")

    def close(self) -> None:
        """Dispose of the context (its pages, storage, cache and cookies go with it), whatever happened."""
        if not self.context:
            return
        self.cdp.deadline = max(self.cdp.deadline, time.monotonic() + 3)
        self.cdp.on_event = lambda message: None
        for method, params in (
            ("Target.setDiscoverTargets", {"discover": False}),
            ("Target.disposeBrowserContext", {"browserContextId": self.context}),
        ):
            with contextlib.suppress(CdpError):
                self.cdp.call(method, params)


class PageTimeout(DocumentError):
    status = "timeout"


class PageCrashed(DocumentError):
    status = "oom"


def declared_size(size: dict) -> tuple[int, int, str]:
    """The viewport (width, height) from what the document declared, clamped to MIN_SIDE..MAX_SIDE, and a note
    saying what was clamped ('' when nothing)."""
    notes, out = [], []
    for name, default in (("width", DEFAULT_WIDTH), ("height", 768)):
        value = size.get(name)
        try:
            number = float(value) if value is not None else float(default)
        except (TypeError, ValueError):
            number = float(default)
        if number != number:  # NaN
            number = float(default)
        clamped = int(max(MIN_SIDE, min(MAX_SIDE, round(number))))
        if value is not None and clamped != round(number):
            notes.append(f"{name} {number:.0f} px clamped to {clamped}")
        out.append(clamped)
    return out[0], out[1], "; ".join(notes)


SIZE_SCRIPT = r"""(() => {
  const out = {width: null, height: null};
  const meta = document.querySelector('meta[name="viewport"]');
  if (meta) {
    for (const part of (meta.getAttribute('content') || '').split(/[,;]/)) {
      const [k, v] = part.split('=').map(s => (s || '').trim().toLowerCase());
      if ((k === 'width' || k === 'height') && /^\d+(\.\d+)?$/.test(v)) out[k] = parseFloat(v);
    }
  }
  const body = document.body;
  if (body) {
    const px = (v) => (/^\d+(\.\d+)?px$/.test(v || '') ? parseFloat(v) : null);
    let w = px(body.style.width), h = px(body.style.height);
    if (w === null || h === null) {
      for (const sheet of Array.from(document.styleSheets)) {
        let rules = [];
        try { rules = Array.from(sheet.cssRules || []); } catch (e) { continue; }
        for (const rule of rules) {
          if (!rule.selectorText || !rule.style) continue;
          const sels = rule.selectorText.split(',').map(s => s.trim().toLowerCase());
          if (!sels.includes('body')) continue;
          if (w === null) w = px(rule.style.width);
          if (h === null) h = px(rule.style.height);
        }
      }
    }
    if (out.width === null && w !== null) out.width = w + (parseFloat(getComputedStyle(body).marginLeft) || 0)
      + (parseFloat(getComputedStyle(body).marginRight) || 0);
    if (out.height === null && h !== null) out.height = h + (parseFloat(getComputedStyle(body).marginTop) || 0)
      + (parseFloat(getComputedStyle(body).marginBottom) || 0);
  }
  return out;
})()"""

GEOMETRY_SCRIPT = r"""(() => {
  const out = [];
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TITLE', 'HEAD']);
  const root = document.body || document.documentElement;
  if (!root) return out;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const sx = window.scrollX, sy = window.scrollY;
  const box = (r) => [Math.floor(r.left + sx), Math.floor(r.top + sy), Math.ceil(r.right + sx), Math.ceil(r.bottom + sy)];
  let node;
  while ((node = walker.nextNode()) && out.length < MAX_TEXTS) {
    const text = (node.nodeValue || '').replace(/\s+/g, ' ').trim();
    const el = node.parentElement;
    if (!text || !el || skip.has(el.tagName)) continue;
    const st = getComputedStyle(el);
    if (st.visibility !== 'visible' || st.display === 'none' || parseFloat(st.opacity) === 0) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const rects = Array.from(range.getClientRects()).filter(r => r.width > 0 && r.height > 0);
    if (!rects.length) continue;
    const b = rects.map(box).reduce((a, r) => [Math.min(a[0], r[0]), Math.min(a[1], r[1]), Math.max(a[2], r[2]), Math.max(a[3], r[3])]);
    let c = el;
    while (c && c !== document.body && c !== document.documentElement && getComputedStyle(c).display.startsWith('inline')) c = c.parentElement;
    const container = (c && c !== document.body && c !== document.documentElement) ? box(c.getBoundingClientRect()) : null;
    out.push({text: text.slice(0, MAX_CHARS), box: b, container: container, font_px: parseFloat(st.fontSize) || null});
  }
  return out;
})()"""

# The page's own `window.cocoReady` promise when it set one (a page that draws asynchronously), fonts loaded,
# then two frames and a short pause: what load-time promises and timers draw is in the picture.
SETTLED_SCRIPT = """Promise.resolve(window.cocoReady).catch(() => null).then(() => document.fonts.ready)
  .then(() => new Promise((done) =>
  requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(() => done(true), 30)))))"""

# Text made transparent without touching `color`: borders, shadows and icons drawn in currentColor stay.
HIDE_TEXT_CSS = (
    "*, *::before, *::after, *::first-letter, *::first-line, *::placeholder, *::selection {"
    " -webkit-text-fill-color: transparent !important; -webkit-text-stroke-color: transparent !important;"
    " text-shadow: none !important; text-decoration-color: transparent !important;"
    " text-emphasis-color: transparent !important; caret-color: transparent !important; }"
    " *::marker { color: transparent !important; }"
    " svg text, svg tspan, svg textPath { fill: transparent !important; stroke: transparent !important; }"
)
HIDE_TEXT_SCRIPT = (
    """(() => { const s = document.createElement('style'); s.textContent = """
    + repr(HIDE_TEXT_CSS)
    + """; (document.head || document.documentElement).appendChild(s);
  return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true)))); })()"""
)

CONTENT_SCRIPT = r"""(() => {
  const body = document.body;
  if (!body) return false;
  if ((body.innerText || '').trim()) return true;
  for (const el of body.querySelectorAll('*')) {
    if (['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE'].includes(el.tagName)) continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0) return true;
  }
  const bg = getComputedStyle(body).backgroundColor, image = getComputedStyle(body).backgroundImage;
  return (bg && bg !== 'rgba(0, 0, 0, 0)' && bg !== 'rgb(255, 255, 255)') || (image && image !== 'none');
})()"""
