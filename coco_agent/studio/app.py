"""The studio's web app (Starlette, the ASGI toolkit LangGraph's own server is built on; served by uvicorn).

Routes (every one needs the studio's token: ``?token=`` once, then its cookie; or the ``X-Coco-Token`` header):

- ``GET /`` the page (one HTML file, its script and styles inline: nothing from a CDN, works offline);
- ``GET /api/runs``, ``GET /api/runs/{id}``: the runs list, one run (``view.py``);
- ``GET /api/runs/{id}/events``: the run again, as Server-Sent Events, every time it moves on (live rounds);
- ``POST /api/runs`` ``{prompt, llm?, vlm?, refiner?, format?, review?, max_rounds?}``: start a run;
- ``POST /api/runs/{id}/edit`` ``{code, round?, format?, critic?, full_refine?}``: edit a round and continue;
- ``POST /api/runs/{id}/review`` ``{action, feedback?, code?}``: answer a paused run;
- ``GET /api/batches``: the batch folders with their summary rows;
- ``GET /files/{id}/{path}``: a run's PNG pictures and final.svg (nothing else; SVG with a CSP that runs nothing).

A run id or file path that leads outside the runs folder (``..``, an absolute path, a symlink out) is refused
(403). Untrusted text reaches the page as JSON and is set with ``textContent`` there, never as HTML, except the
report's highlighter output (pygments escapes the code).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from coco_agent import formats
from coco_agent.context import REVIEW_POINTS, RunContext
from coco_agent.errors import EditRefused, RunDirError, StudioRefused
from coco_agent.rundir import FINAL_SVG_FILE
from coco_agent.studio import view
from coco_agent.studio.jobs import Jobs

PAGE = Path(__file__).with_name("page.html")
COOKIE = "coco_studio"
MAX_BODY = 2 * 1024 * 1024  # bytes of a request body (a program is at most 1 MiB)
MAX_PROMPT = 20_000
SVG_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
PAGE_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"


def create_app(root: Path, ctx: RunContext, token: str) -> Starlette:
    """The studio over the runs folder ``root``; runs started from the page use ``ctx`` with the page's
    choices applied (models, refiner among ``ctx``'s, format, review, rounds)."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    jobs = Jobs(root, ctx)

    def guard(request: Request) -> Response | None:
        given = (
            request.query_params.get("token")
            or request.headers.get("x-coco-token")
            or request.cookies.get(COOKIE)
            or ""
        )
        if not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "this studio needs its token: open the address it printed"}, 403)
        return None

    def run_dir(run_id: str) -> Path:
        return inside(root, run_id)

    async def page(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        from coco_agent.report.page import _FORMATTER

        html = PAGE.read_text(encoding="utf-8").replace("/*HIGHLIGHT*/", _FORMATTER.get_style_defs(".hl"))
        defaults = {
            "llm": _label(ctx.llm), "vlm": _label(ctx.vlm), "refiners": sorted({ctx.refiner or "none", "none"}),
            "refiner": ctx.refiner or "none", "formats": list(formats.names()), "format": ctx.format,
            "reviews": list(REVIEW_POINTS), "max_rounds": ctx.max_rounds, "root": str(root),
        }  # fmt: skip
        html = html.replace("/*DEFAULTS*/{}", json.dumps(defaults).replace("<", "\\u003c"))
        response = HTMLResponse(
            html, headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"}
        )
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def list_runs(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        snapshot = jobs.snapshot()
        rows = await asyncio.to_thread(
            lambda: [view.run_summary(root, r, snapshot) for r in view.run_ids(root)]
        )
        return JSONResponse({"runs": rows})

    async def one_run(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            folder = run_dir(request.path_params["run"])
        except StudioRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        if not view.is_run(folder):
            return JSONResponse({"error": "no such run"}, 404)
        rel = folder.relative_to(root).as_posix()
        return JSONResponse(await asyncio.to_thread(view.run_detail, root, rel, jobs.snapshot()))

    async def events(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            folder = run_dir(request.path_params["run"])
        except StudioRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        rel = folder.relative_to(root).as_posix()

        async def stream():
            last = None
            while not await request.is_disconnected():
                mark = (view.version(folder), jobs.snapshot().get(rel))
                if mark != last and view.is_run(folder):
                    last = mark
                    detail = await asyncio.to_thread(view.run_detail, root, rel, jobs.snapshot())
                    yield f"data: {json.dumps(detail)}\n\n"
                await asyncio.sleep(0.3)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def start(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            prompt, run_ctx = page_settings(body, ctx)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"id": jobs.start(prompt, run_ctx)}, 202)

    async def edit(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            folder = run_dir(request.path_params["run"])
            rel = folder.relative_to(root).as_posix()
            problem = await asyncio.to_thread(_edit_problem, folder, body)
            if problem:
                return JSONResponse({"error": problem}, 400)
            if jobs.busy(rel) or _busy(folder):
                return JSONResponse({"error": _busy_message(folder)}, 409)
            rnd = body.get("round")
            jobs.edit(rel, body["code"], rnd=int(rnd) if rnd is not None else None, fmt=body.get("format") or None,
                      critic=bool(body.get("critic", True)), full_refine=bool(body.get("full_refine", False)))  # fmt: skip
        except StudioRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        return JSONResponse({"id": rel}, 202)

    async def review(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        body = await _body(request)
        if isinstance(body, Response):
            return body
        try:
            folder = run_dir(request.path_params["run"])
            rel = folder.relative_to(root).as_posix()
            problem = await asyncio.to_thread(_review_problem, folder, body)
            if problem:
                return JSONResponse({"error": problem}, 400)
            if jobs.busy(rel) or _busy(folder):
                return JSONResponse({"error": _busy_message(folder)}, 409)
            answer = {k: body[k] for k in ("action", "feedback", "code", "format") if body.get(k) is not None}
            jobs.review(rel, answer)
        except StudioRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        return JSONResponse({"id": rel}, 202)

    async def list_batches(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return JSONResponse({"batches": await asyncio.to_thread(view.batches, root)})

    async def files(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            path = inside(root, request.path_params["path"])
        except StudioRefused as exc:
            return JSONResponse({"error": str(exc)}, 403)
        if not path.is_file() or not _in_a_run(root, path):
            return JSONResponse({"error": "no such file"}, 404)
        if path.suffix == ".png":
            return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "no-store"})
        if path.name == FINAL_SVG_FILE:
            headers = {"Content-Security-Policy": SVG_CSP, "Cache-Control": "no-store"}
            return Response(path.read_bytes(), media_type="image/svg+xml", headers=headers)
        return JSONResponse({"error": "the studio serves a run's pictures only"}, 403)

    routes = [
        Route("/", page),
        Route("/api/runs", list_runs),
        Route("/api/runs", start, methods=["POST"]),
        Route("/api/batches", list_batches),
        Route("/api/runs/{run:path}/events", events),
        Route("/api/runs/{run:path}/edit", edit, methods=["POST"]),
        Route("/api/runs/{run:path}/review", review, methods=["POST"]),
        Route("/api/runs/{run:path}", one_run),
        Route("/files/{path:path}", files),
    ]
    return Starlette(routes=routes)


def inside(root: Path, relative: str) -> Path:
    """``root / relative`` resolved (symlinks followed), StudioRefused unless it stays inside ``root``."""
    if not relative or "\x00" in relative or relative.startswith(("/", "\\")) or Path(relative).is_absolute():
        raise StudioRefused(f"refused: {relative[:200]!r} is not a path inside the studio's runs folder")
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise StudioRefused(f"refused: {relative[:200]!r} leads outside the studio's runs folder")
    return path


def _in_a_run(root: Path, path: Path) -> bool:
    """Whether ``path`` lies in a run directory under ``root``."""
    return any(view.is_run(folder) for folder in path.parents if folder != root and root in folder.parents)


def page_settings(body: dict[str, Any], ctx: RunContext) -> tuple[str, RunContext]:
    """The prompt and the run context of a run started from the page (ValueError saying what is wrong)."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("write a prompt: what to draw")
    if len(prompt) > MAX_PROMPT:
        raise ValueError(f"the prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT:,}")
    changes: dict[str, Any] = {}
    for role in ("llm", "vlm"):
        spec = body.get(role)
        if spec in (None, ""):
            continue
        if not isinstance(spec, str) or len(spec) > 200 or spec.strip().lower().startswith("hf:"):
            raise ValueError(
                f"{role}: name a served model ('provider:model'); local weights (hf:) are chosen where the studio "
                "starts (`coco studio --llm hf:...`), not from the page"
            )
        changes[role] = spec.strip()
    refiner = body.get("refiner") or ctx.refiner or "none"
    if refiner not in {ctx.refiner or "none", "none"}:
        raise ValueError(f"refiner: choose the studio's ({ctx.refiner}) or none")
    changes["refiner"] = refiner
    if body.get("format"):
        changes["format"] = formats.get(str(body["format"])).name
    if body.get("review"):
        if body["review"] not in REVIEW_POINTS:
            raise ValueError(f"review: one of {', '.join(REVIEW_POINTS)}")
        changes["review"] = body["review"]
    if body.get("max_rounds") not in (None, ""):
        changes["max_rounds"] = int(body["max_rounds"])
    run_ctx = dataclasses.replace(ctx, **changes)
    run_ctx.validate()
    return prompt, run_ctx


def _edit_problem(folder: Path, body: dict[str, Any]) -> str:
    from coco_agent.human.edit import edit_point
    from coco_agent.human.program import checked_program

    try:
        rnd = body.get("round")
        point = edit_point(folder, int(rnd) if rnd not in (None, "") else None)
        checked_program(body.get("code") or "", point.format, body.get("format") or None)
    except (RunDirError, EditRefused, ValueError, TypeError) as exc:
        return str(exc)
    return ""


def _review_problem(folder: Path, body: dict[str, Any]) -> str:
    from coco_agent.human.review import pending_review
    from coco_agent.nodes.review import answer_problem

    try:
        waiting = pending_review(folder)
    except RunDirError as exc:
        return str(exc)
    if waiting is None:
        return f"{folder.name} waits for no review"
    return answer_problem(body, {"format": waiting.get("format")})


def _busy(folder: Path) -> bool:
    from coco_agent.runlock import is_busy

    return is_busy(folder)


def _busy_message(folder: Path) -> str:
    return f"{folder.name} is being continued right now (here or elsewhere); try again when it is done"


def _label(spec: Any) -> str:
    from coco_agent.settings import model_label

    return model_label(spec) or ""


async def _body(request: Request) -> dict[str, Any] | Response:
    """The request's JSON object, read no further than MAX_BODY bytes; else the error response."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return JSONResponse({"error": f"the request is over {MAX_BODY:,} bytes"}, 413)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return JSONResponse({"error": "send JSON"}, 400)
    return body if isinstance(body, dict) else JSONResponse({"error": "send a JSON object"}, 400)
