"""`coco sandbox build|status`: build the sandbox image (cached by content hash) / show the engine, runtime and
image."""

from __future__ import annotations

import argparse
import time

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="build or inspect the Docker sandbox image")
    actions = parser.add_subparsers(dest="sandbox_command", required=True)
    build = actions.add_parser("build", help="build the image from Debian packages (no registry needed)")
    build.add_argument("--force", action="store_true", help="rebuild even when the tag exists")
    build.set_defaults(func=run_build)
    status = actions.add_parser("status", help="engine, runtime and image state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=run_status)


def run_build(args: argparse.Namespace) -> int:
    """Build the sandbox image (fast when its tag exists); print the tag."""
    from coco_agent.errors import SandboxUnavailable
    from coco_agent.sandbox.image import build_image

    started = time.monotonic()
    try:
        tag = build_image(progress=display.sandbox_progress, force=args.force)
    except SandboxUnavailable as exc:
        display.sandbox_error("cannot build the sandbox image:", exc)
        return ExitCode.FAILED
    display.sandbox_ready(tag, time.monotonic() - started)
    print(tag)
    return ExitCode.OK


def run_status(args: argparse.Namespace) -> int:
    """Say whether the engine answers and the image is there; exit 0 only when Docker rendering is ready."""
    from coco_agent.safe_text import json_text
    from coco_agent.sandbox.image import image_status

    status = image_status()
    ready = bool(status["engine"] and status["present"])
    if args.json:
        print(json_text(status))
    else:
        display.sandbox_status(status)
    return ExitCode.OK if ready else ExitCode.FAILED
