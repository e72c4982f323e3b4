"""`coco replay RUN -o NEW`: re-derive a run from its recorded model answers, with zero model calls, and report
every difference (`coco_agent.replays`)."""

from __future__ import annotations

import argparse

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.rundir import REPLAY_FILE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-run a run from its recorded model answers (no model calls) and report differences"
    )
    parser.add_argument("run_dir", help="the recorded run directory")
    parser.add_argument("-o", "--out", required=True, help="the replay's own run directory")
    parser.add_argument("--force", action="store_true", help="replace a run already in OUT")
    parser.add_argument("--json", action="store_true", help=f"print {REPLAY_FILE} to stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the replay reproduced the run exactly, 1 when something differs, 2 when it cannot run."""
    import coco_agent
    from coco_agent.errors import ReplayError, RunDirError

    try:
        report = coco_agent.replay(args.run_dir, args.out, force=args.force)
    except (ReplayError, RunDirError) as exc:
        return display.fail(exc)
    display.replay_report(report, args.json)
    return ExitCode.OK if report["identical"] else ExitCode.FAILED
