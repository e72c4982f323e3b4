"""`coco render FILE -o OUT.png`: run one program in the sandbox (`coco_agent.render`); exit 0 only when OUT.png
was written."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.cli.options import DEFAULTS, FORMATS, SANDBOXES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("render", help="run one drawing program in the sandbox and save its PNG")
    parser.add_argument("file", type=Path, help="program (.py) or SVG file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the PNG")
    parser.add_argument("--format", choices=["auto", *FORMATS], default="auto")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULTS["timeout_s"], help="seconds (default %(default)s)"
    )
    parser.add_argument("--sandbox", choices=SANDBOXES, default=DEFAULTS["sandbox"])
    parser.add_argument(
        "--json", action="store_true", help="print {status, error, seconds, sandbox} to stdout"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Render FILE to OUT.png; exit 0 only when OUT.png was written."""
    import coco_agent
    from coco_agent import formats
    from coco_agent.errors import SandboxUnavailable

    started = time.monotonic()
    report: dict = {"status": "error", "error": "", "seconds": 0.0, "sandbox": ""}
    try:
        code = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _done(args, dict(report, error=f"cannot read {args.file}: {exc}"), ExitCode.USAGE)
    fmt = formats.guess(code, args.file.name) if args.format == "auto" else args.format
    progress = None if args.json else display.sandbox_progress
    try:
        result = coco_agent.render(code, fmt, sandbox=args.sandbox, timeout_s=args.timeout, progress=progress)
    except SandboxUnavailable as exc:
        return _done(args, dict(report, error=str(exc)), ExitCode.USAGE)
    report = {
        "status": result.status,
        "error": result.error,
        "seconds": result.seconds,
        "sandbox": result.sandbox,
    }
    report.update(format=fmt, width=result.width, height=result.height)
    if not result.ok:
        report["stderr_tail"] = result.stderr[-2000:]
        return _done(args, report, ExitCode.FAILED)
    try:
        write_atomic(args.output, result.png or b"")
    except OSError as exc:
        failed = dict(report, status="error", error=f"cannot write {args.output}: {exc}")
        return _done(args, failed, ExitCode.FAILED)
    report.update(output=str(args.output), seconds=round(time.monotonic() - started, 3))
    return _done(args, report, ExitCode.OK)


def write_atomic(path: Path, data: bytes) -> None:
    """Write the PNG whole or not at all (a temporary file renamed into place)."""
    from coco_agent.runs import write_bytes

    write_bytes(path, data)


def _done(args: argparse.Namespace, report: dict, code: ExitCode) -> ExitCode:
    return display.render_report(report, code, args.json)
