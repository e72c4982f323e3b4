"""`coco studio [--port P] [--host H] [--runs DIR]`: the live local web app over a runs folder (coco_agent.studio)."""

from __future__ import annotations

import argparse
import contextlib
import ipaddress

import coco_agent.cli.display as display
from coco_agent.cli.exit_codes import ExitCode
from coco_agent.cli.options import add_run_options, context_from_args

DEFAULT_PORT = 8765


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("studio", help="a live local web app: start, watch, edit and review runs")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s; 0: any free)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default %(default)s: this machine only; another one is reachable by others, "
        "who then need the printed token)",
    )
    parser.add_argument("--runs", help="the runs folder (default: the run context's runs_dir, ./runs)")
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import secrets
    import socket
    import sys
    from pathlib import Path

    from coco_agent.errors import ModelChoiceError

    if not 0 <= args.port <= 65535:
        return display.fail(f"--port must be 0-65535, got {args.port}")
    ctx = context_from_args(args)
    try:
        ctx.validate()
    except ValueError as exc:
        return display.fail(exc)
    try:
        from coco_agent.cli.options import settle

        settle(ctx)
    except ModelChoiceError as exc:  # the studio still shows the runs; starting one says why it cannot
        display.warn(f"no model for new runs yet: {exc}")
    try:
        import uvicorn

        from coco_agent.studio.app import create_app
    except ImportError as exc:
        return display.fail(
            f"the studio needs starlette and uvicorn: pip install 'coco-agent[studio]' ({exc})"
        )
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
        sock.listen(128)  # connections wait in the backlog until the server takes them: the address works now
    except OSError as exc:
        return display.fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    port = sock.getsockname()[1]
    token = secrets.token_urlsafe(18)
    root = Path(args.runs or ctx.runs_dir)
    if not _loopback(args.host):
        display.warn(
            f"listening on {args.host}: anyone who reaches it with the token can start runs that execute programs "
            "in the sandbox; keep the token private"
        )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"coco studio: http://{shown}:{port}/?token={token}  (runs folder {root.resolve()})", flush=True)
    config = uvicorn.Config(create_app(root, ctx, token), log_level="warning", access_log=False)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[sock])
    print("coco studio stopped", file=sys.stderr)
    return int(ExitCode.OK)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
