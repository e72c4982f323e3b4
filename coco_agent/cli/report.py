"""`coco report TARGET`: a static HTML report of a batch folder or of one run directory."""

from __future__ import annotations

import argparse
from pathlib import Path

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.rundir import REPORT_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="write a static HTML report of a batch or of one run")
    parser.add_argument("target", type=Path, help="a batch folder (coco batch -o) or a run directory")
    parser.add_argument("-o", "--output", type=Path, help=f"HTML file (default TARGET/{REPORT_FILE})")
    parser.add_argument(
        "--embed-images", action="store_true", help="put every image inside the HTML (one portable file)"
    )
    parser.add_argument(
        "--details", type=int, default=500, help="prompts shown in full, the rest only in the table (500)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the HTML report and print its path."""
    from coco_agent.errors import ReportError
    from coco_agent.report import write_report
    from coco_agent.safe_text import terminal_text

    try:
        path = write_report(
            args.target, args.output, embed_images=args.embed_images, details=max(0, args.details)
        )
    except ReportError as exc:
        return display.fail(exc)
    print(terminal_text(path))
    return ExitCode.OK
