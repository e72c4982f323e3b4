"""Before a Ray batch runs anything: the cluster answers, Postgres answers, and every sandbox node can work.

Each failure is a ``ClusterUnavailable`` (a ``BatchAborted``: exit 2, nothing ran) whose message says what to
start or fix. The node checks run as one small task pinned to each node that declares ``coco_sandbox``: the
prompts file and OUT/batch.json must be visible there (OUT on a path every node mounts), and every node must
hold the same sandbox image (the tag is a hash of sandbox/ and the worker bundle), present in its Docker.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from coco_agent.errors import ClusterUnavailable
from coco_agent.rundir import BATCH_FILE

SANDBOX_RESOURCE = "coco_sandbox"
HEAD_HINT = (
    "start one with `ray start --head --port=6379 --resources='{\"coco_sandbox\": 2}'` (see README, 'Batches "
    "on a Ray cluster'), or leave --ray-address / COCO_RAY_ADDRESS out for a local Ray instance"
)


def check_address(address: str, timeout_s: float = 3.0) -> None:
    """A ``host:port`` address must accept a connection at once (ray.init would otherwise retry for long)."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnavailable(f"--ray-address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnavailable(f"no Ray cluster answers at {address} ({exc}); {HEAD_HINT}") from exc


def probe_node(prompts: str, out: str, batch_id: str, sandbox: str) -> dict[str, Any]:
    """What one node sees (runs on that node): the prompts file, OUT's batch.json, the sandbox image."""
    import json

    from coco_agent.version import __version__

    report: dict[str, Any] = {
        "host": socket.gethostname(),
        "version": __version__,
        "prompts": os.access(prompts, os.R_OK),
        "out": False,
        "image": None,
        "image_present": None,
    }
    with contextlib.suppress(OSError, ValueError):
        report["out"] = (
            json.loads(Path(out, BATCH_FILE).read_text(encoding="utf-8")).get("batch_id") == batch_id
        )
    if sandbox in ("docker", "auto"):
        from coco_agent.sandbox.image import image_tag

        report["image"] = image_tag()
        try:
            from coco_agent.sandbox.image import image_status

            report["image_present"] = bool(image_status().get("present"))
        except Exception:
            report["image_present"] = False
    return report


def check_reports(reports: dict[str, dict[str, Any]], prompts: Path, out: Path, sandbox: str) -> None:
    """Refuse the batch, naming the nodes, when a node cannot see the files or holds another sandbox."""
    problems = []
    blind = [n for n, r in reports.items() if not r["prompts"]]
    if blind:
        problems.append(
            f"the prompts file {prompts} cannot be read on {', '.join(blind)}: put it on a path every node "
            "mounts (the same path everywhere)"
        )
    apart = [n for n, r in reports.items() if not r["out"]]
    if apart:
        problems.append(
            f"OUT {out} is not the same folder on {', '.join(apart)} (its {BATCH_FILE} is missing there): "
            "put OUT on a path every node mounts"
        )
    versions = {r["version"] for r in reports.values()}
    if len(versions) > 1:
        listed = "; ".join(f"{n}: {r['version']}" for n, r in reports.items())
        problems.append(f"coco-agent versions differ across nodes ({listed}): install one version everywhere")
    tags = {r["image"] for r in reports.values() if r["image"]}
    if len(tags) > 1:
        listed = "; ".join(f"{n}: {r['image']}" for n, r in sorted(reports.items()))
        problems.append(
            f"sandbox images differ across nodes ({listed}): install the same coco-agent on every node and "
            "run `coco sandbox build` there"
        )
    missing = [
        n for n, r in reports.items() if r["image"] and r["image_present"] is False and sandbox == "docker"
    ]
    if missing:
        problems.append(
            f"the sandbox image is missing on {', '.join(missing)}: run `coco sandbox build` there"
        )
    if problems:
        raise ClusterUnavailable("the cluster cannot run this batch: " + "; ".join(problems))


def sandbox_nodes(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alive nodes that declare the sandbox resource; ClusterUnavailable when there is none."""
    found = [n for n in nodes if n.get("Alive") and n.get("Resources", {}).get(SANDBOX_RESOURCE, 0) >= 1]
    if not found:
        raise ClusterUnavailable(
            f"no node of the cluster declares the {SANDBOX_RESOURCE} resource: start each CPU node with "
            f"`ray start --address=HEAD:6379 --resources='{{\"{SANDBOX_RESOURCE}\": K}}'` (K drafting "
            "processes beside its sandbox)"
        )
    return found


def node_name(node: dict[str, Any]) -> str:
    return f"{node.get('NodeManagerAddress', '?')} ({node['NodeID'][:8]})"
