"""How each kind of sandbox starts its workers, in one table. A new runtime (gVisor, another container engine)
is one launcher module and one line here; coco_agent/sandbox/backends.py turns each into a WarmPool."""

from __future__ import annotations

from coco_agent.sandbox.launchers.bubblewrap import BwrapLauncher
from coco_agent.sandbox.launchers.docker import DockerLauncher
from coco_agent.sandbox.launchers.gvisor import GvisorLauncher
from coco_agent.sandbox.launchers.process import ProcessLauncher

__all__ = ["LAUNCHERS", "BwrapLauncher", "DockerLauncher", "GvisorLauncher", "ProcessLauncher"]

LAUNCHERS = {
    launcher.kind: launcher for launcher in (DockerLauncher, GvisorLauncher, BwrapLauncher, ProcessLauncher)
}
