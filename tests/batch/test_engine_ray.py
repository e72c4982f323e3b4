"""`coco batch --engine ray` on a real Ray cluster on this machine (slow tier; one cluster for the module).

The cluster: a head (no CPUs for work), two CPU nodes that declare ``coco_sandbox: 1`` (each runs one
DraftStage beside its own warm Docker sandbox pool), and one node with a logical GPU (``num_gpus=1``; the
RefineStage runs the tiny random img2img pipeline on its CPU). Checkpoints go to a real Postgres started by the
fixture; the code writer is the local scripted server, which logs every request. The CLI runs as a subprocess
(the driver), as a user runs it. Scenarios: a clean run and its rerun, a CPU node killed mid-batch, the driver
SIGKILLed and the same command run again. Each checks: one result per prompt, no second code-writer call for a
prompt that had finished, complete summaries, refinement batched across nodes, checkpoints pruned, and no
container or Ray process left behind.

Cost here (2 cores, other work beside it): about 0.7 GB and ~10 s for the cluster, 1-2 minutes per scenario.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from support.batch_helpers import clean_env, keyed, keyed_responder, requests_for, write_jsonl
from support.fixtures_models import Slow
from support.paths import require

pytestmark = [pytest.mark.slow, pytest.mark.docker]

SMALL_PIL = """```python
from PIL import Image, ImageDraw
image = Image.new("RGB", (64, 64), "white")
ImageDraw.Draw(image).rectangle((8, 8, 40, 56), fill=(30, 90, 200))
image.save("output.png")
```"""


def _ray_processes(session_dir: str) -> list[int]:
    """Pids of processes of this cluster's session (raylets, workers, GCS): found by their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if session_dir in cmdline or ("ray::" in cmdline and _environ_has(entry, session_dir)):
            found.append(int(entry.name))
    return found


def _environ_has(entry: Path, text: str) -> bool:
    try:
        return text.encode() in (entry / "environ").read_bytes()
    except OSError:
        return False


def pids_of(events: list[dict]) -> set[str]:
    return {e["node"].rpartition("pid ")[2].rstrip(")") for e in events if e.get("node")}


def _containers_of(events: list[dict]) -> list[str]:
    """Sandbox containers still there whose owner is one of the stages that sent ``events`` (other helpers'
    containers on this machine are not ours to count); waits a little for removals in flight."""
    pids = pids_of(events)
    deadline = time.monotonic() + 30
    while True:
        proc = subprocess.run(
            ["docker", "ps", "-a", "--filter", "label=coco-agent.sandbox", "--format", '{{.Label "coco-agent.owner"}}'],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        left = [
            owner for owner in proc.stdout.split() if owner.split(":")[1:2] and owner.split(":")[1] in pids
        ]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1)


@pytest.fixture(scope="module")
def ray_cluster():
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        require(False, "ray is not installed (pip install 'coco-agent[cluster]')")
    require(
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0,
        "the Docker engine is not running",
    )
    temp = tempfile.mkdtemp(prefix="coco-ray-", dir="/tmp")
    os.makedirs(
        "/tmp/ray", exist_ok=True
    )  # Ray notes the newest cluster's address there, whatever temp_dir says
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "temp_dir": temp},
    )
    cluster.cpu_nodes = [cluster.add_node(num_cpus=2, resources={"coco_sandbox": 1}) for _ in range(2)]
    cluster.gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    cluster.session_dir = cluster.head_node.get_session_dir_path()
    try:
        yield cluster
    finally:
        cluster.shutdown()
        deadline = time.monotonic() + 30
        while _ray_processes(cluster.session_dir) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = _ray_processes(cluster.session_dir)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, f"Ray processes left behind: {left}"


@pytest.fixture
def pg(postgres_server):
    if not postgres_server.running():
        postgres_server.start()
    return postgres_server.url


class Counting:
    """A responder that counts requests in flight at the server (the cluster-wide bound must hold)."""

    def __init__(self, inner, delay_s: float = 0.0) -> None:
        self.inner, self.delay_s = inner, delay_s
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, body):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            return self.inner(body)
        finally:
            with self.lock:
                self.now -= 1


def _command(prompts: Path, out: Path, cluster, pg_url: str, server, refiner: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "coco_agent.cli", "batch", str(prompts), "-o", str(out), "--engine", "ray",
        "--ray-address", cluster.address, "--pg-url", pg_url, "--json", "--workers", "2",
        "--llm", "openai:test-model", "--vlm", "none", "--base-url", server.base_url,
        "--sandbox", "docker", "--format", "pil", "--refiner", str(refiner), "--refine-strength", "0.5",
        "--no-refine-guard", "--refine-batch", "4", "--refine-wait-ms", "1500", *extra,
    ]  # fmt: skip


def _start(command: list[str], cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        stdin=subprocess.DEVNULL, start_new_session=True, cwd=cwd,
    )  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, list[dict], str]:
    """The driver's exit code, its JSON lines and its stderr, once it exits. Read through the same buffered
    file objects as ``_run_until``: ``communicate()`` reads the raw pipes, so the lines a readline() had
    already buffered were lost (CI once missed a prompt's event that way)."""
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
    drain.start()
    killer = threading.Timer(timeout, proc.kill)  # a driver that hangs ends the test, not the suite
    killer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
    finally:
        killer.cancel()
    drain.join(60)
    err = errors[0] if errors else ""
    lines = [line for line in out.splitlines() if line.strip()]
    bad = [line for line in lines if not line.startswith("{")]
    assert not bad, f"not JSON on stdout: {bad[:5]}"
    return proc.returncode, [json.loads(line) for line in lines], err


def _prompts(tmp_path: Path, keys: list[str]) -> Path:
    return write_jsonl(tmp_path / "p.jsonl", [{"id": k, "prompt": keyed(k)} for k in keys])


def _results(out: Path, keys: list[str]) -> dict[str, dict]:
    return {k: json.loads((out / k / "result.json").read_text()) for k in keys}


def _assert_complete(out: Path, keys: list[str]) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    assert [row["id"] for row in summary["rows"]] == keys
    assert summary["statuses"]["accepted"] == len(keys) and summary["statuses"]["pending"] == 0, summary
    assert (out / "summary.csv").read_text().count("\n") == len(keys) + 1
    return summary


def _sqlite_values(run_dir: Path) -> dict:
    """The latest state in a run directory's checkpoints.sqlite."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from coco_agent.runner import _compiled_graph, saved_run

    _, thread, _ = saved_run(run_dir, None)
    with SqliteSaver.from_conn_string(str(run_dir / "checkpoints.sqlite")) as saver:
        graph = _compiled_graph().copy({"checkpointer": saver})
        return graph.get_state({"configurable": {"thread_id": thread}}).values


def _threads_left(pg_url: str, batch_id: str) -> list[str]:
    from coco_agent.checkpoints.postgres import PostgresStore

    async def go():
        store = PostgresStore(pg_url, batch_id)
        try:
            return await store.threads()
        finally:
            await store.close()

    return asyncio.run(go())


def test_clean_run_then_rerun(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    counting = Counting(keyed_responder(default_code=SMALL_PIL), delay_s=0.3)
    openai_server.respond_with(counting)
    keys = [f"c{i}" for i in range(6)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(
        prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir, "--model-concurrency", "2"
    )
    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    events = [e for e in lines if e.get("event") == "prompt"]
    assert sorted(e["id"] for e in events) == keys and {e["how"] for e in events} == {"started"}
    assert len({e["node"] for e in events}) == 2, events  # both CPU nodes drafted
    results = _results(out, keys)
    assert all(r["status"] == "accepted" and r["paths"]["final"] == "final.png" for r in results.values())
    batches = [r["refinement"]["settings"]["batch"] for r in results.values()]
    assert max(batches) > 1, batches  # drafts from both nodes shared pipeline calls on the GPU node
    summary = lines[-1]
    assert summary["event"] == "summary" and max(summary["refine_batches"]) > 1
    _assert_complete(out, keys)
    assert all(len(requests_for(openai_server, k)) == 1 for k in keys)
    assert counting.peak <= 2, counting.peak  # --model-concurrency 2 held across both nodes
    batch_id = json.loads((out / "batch.json").read_text())["batch_id"]
    assert _threads_left(pg, batch_id) == []  # every published run's checkpoints were pruned
    assert not any((out / k / "checkpoints.sqlite").exists() for k in keys)
    assert pids_of(events) and _containers_of(events) == []  # the stages removed their containers

    code, again, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    assert {e["how"] for e in again if e.get("event") == "prompt"} == {"skipped"}
    assert all(len(requests_for(openai_server, k)) == 1 for k in keys)  # no model call for finished prompts


def _run_until(proc: subprocess.Popen, finished: int) -> list[dict]:
    """Read the driver's JSON events until ``finished`` prompts have ended; return those events."""
    seen = []
    while len(seen) < finished:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()[-3000:]
        event = json.loads(line)
        if event.get("event") == "prompt":
            seen.append(event)
    return seen


def test_a_cpu_node_killed_mid_batch(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    """One CPU node dies (all its processes SIGKILLed) while its stage runs prompts: they resume on the other
    node from their last checkpoint; prompts finished before are never asked again."""
    coder = keyed_responder(default_code=SMALL_PIL)
    openai_server.respond_with(lambda body: Slow(1.5, coder(body)))
    keys = [f"k{i}" for i in range(8)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    proc = _start(_command(prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir))
    try:
        early = _run_until(proc, 2)
        asked = {e["id"]: len(requests_for(openai_server, e["id"])) for e in early}
        victim = ray_cluster.cpu_nodes.pop(0)
        ray_cluster.remove_node(victim, allow_graceful=False)
        code, rest, err = _finish(proc)
    finally:
        proc.kill()
        if len(ray_cluster.cpu_nodes) < 2:  # the next tests get two sandbox nodes again
            ray_cluster.cpu_nodes.append(ray_cluster.add_node(num_cpus=2, resources={"coco_sandbox": 1}))
            ray_cluster.wait_for_nodes()
    assert code == 0, err[-3000:]
    results = _results(out, keys)
    assert all(r["status"] == "accepted" for r in results.values()), results
    for event in early:  # finished before the node died: never asked again
        assert len(requests_for(openai_server, event["id"])) == asked[event["id"]], event["id"]
    assert all(len(requests_for(openai_server, k)) <= 2 for k in keys)  # at most the lost node's step redone
    _assert_complete(out, keys)
    events = early + [e for e in rest if e.get("event") == "prompt"]
    assert sorted(e["id"] for e in events) == keys  # each prompt ended once


def test_the_driver_sigkilled_and_rerun(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    coder = keyed_responder(default_code=SMALL_PIL)
    openai_server.respond_with(lambda body: Slow(1.0, coder(body)))
    keys = [f"d{i}" for i in range(8)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir)
    proc = _start(command)
    try:
        early = _run_until(proc, 2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        asked = {e["id"]: len(requests_for(openai_server, e["id"])) for e in early}
    finally:
        proc.kill()
    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    events = [e for e in lines if e.get("event") == "prompt"]
    how = {e["id"]: e["how"] for e in events}
    for event in early:  # finished before the kill: skipped, and never asked again
        assert (
            how[event["id"]] == "skipped"
            and len(requests_for(openai_server, event["id"])) == asked[event["id"]]
        )
    assert all(len(requests_for(openai_server, k)) <= 2 for k in keys)
    assert all(r["status"] == "accepted" for r in _results(out, keys).values())
    _assert_complete(out, keys)
    batch_id = json.loads((out / "batch.json").read_text())["batch_id"]
    assert _threads_left(pg, batch_id) == []


def test_a_batch_budget_holds_across_the_cluster(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    """--batch-budget-tokens on the cluster: every call of every node is counted in one book; once it is spent
    the driver starts no new prompt (the rest stay pending, exit 5) and the runs in flight stop cleanly (the
    first two crash, so each stops before its round 2); a rerun with no budget continues those two and starts
    the rest."""
    crash = "```python\nfrom PIL import Image\nraise ValueError('boom: the table is broken')\n```"
    openai_server.respond_with(keyed_responder(coder={"b0": [crash], "b1": [crash]}, default_code=SMALL_PIL))
    keys = [f"b{i}" for i in range(6)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(
        prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir, "--workers", "1",
        "--batch-budget-tokens", "1",
    )  # fmt: skip
    code, lines, err = _finish(_start(command))
    assert code == 5, err[-3000:]
    assert "were not started: the batch budget of 1 tokens is spent" in err, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    statuses = {row["id"]: row["status"] for row in summary["rows"]}
    ran = [k for k in keys if statuses[k] != "pending"]
    assert ran == ["b0", "b1"] and {statuses[k] for k in ran} == {"budget"}, statuses  # one per stage
    assert len(openai_server.requests) == 2  # round 1 each; no round 2 once the book was spent
    book = summary["batch_budget"]
    assert "1 tokens is spent" in book["stopped"]
    assert book["tokens"] == sum(u["total_tokens"] for u in openai_server.usage)  # both nodes' calls counted
    batch_id = json.loads((out / "batch.json").read_text())["batch_id"]
    assert _threads_left(pg, batch_id) == []  # a stopped run's checkpoint went into its run directory

    # the budget was that invocation's: a rerun without one continues the stopped runs, starts the rest
    rerun = command[: command.index("--batch-budget-tokens")]
    code, lines, err = _finish(_start(rerun))
    assert code == 0, err[-3000:]
    how = {e["id"]: e["how"] for e in lines if e.get("event") == "prompt"}
    want = {"accepted": "skipped", "budget": "resumed", "pending": "started"}
    assert how == {k: want[statuses[k]] for k in keys}, (how, statuses)
    assert all(r["status"] == "accepted" for r in _results(out, keys).values())
    assert all(len(requests_for(openai_server, k)) == (2 if k in ran else 1) for k in keys)  # none redone
    assert all(_results(out, ran)[k]["rounds"] == 2 for k in ran)
    _assert_complete(out, keys)
    assert _threads_left(pg, batch_id) == []
    # their run directories' checkpoints moved on with them: `coco resume` or `coco edit` there starts from the
    # finished run, not from the budget stop
    assert all(_sqlite_values(out / k)["status"] == "accepted" for k in ran)


def test_a_run_paused_for_review_is_answered_without_the_cluster(
    ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path
):
    """--review draft on the cluster: each run pauses (exit 4), its pause handed over from Postgres into its run
    directory, so `coco review`'s answer works on a machine with no Postgres; a rerun calls no model: the
    answered run is skipped and the other still waits."""
    from coco_agent.human.review import pending_review, review_run

    openai_server.respond_with(keyed_responder(default_code=SMALL_PIL))
    keys = ["v0", "v1"]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir, "--review", "draft")
    code, lines, err = _finish(_start(command))
    assert code == 4, err[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"]["paused"] == 2, summary["statuses"]
    batch_id = json.loads((out / "batch.json").read_text())["batch_id"]
    assert _threads_left(pg, batch_id) == []  # handed over: nothing of theirs is left in Postgres
    asked = len(openai_server.chat_requests)
    waiting = pending_review(out / "v0")
    assert waiting and waiting["point"] == "draft", waiting
    done = review_run(out / "v0", {"action": "accept"})  # this process has no Postgres store
    assert done["status"] == "accepted" and (out / "v0" / "final.png").is_file(), done.get("error")
    assert done["refinement"]["kept"] is True, done["refinement"]

    code, again, err = _finish(_start(command))
    assert code == 4, err[-3000:]
    how = {e["id"]: (e["how"], e["status"]) for e in again if e.get("event") == "prompt"}
    assert how == {"v0": ("skipped", "accepted"), "v1": ("resumed", "paused")}, how
    assert len(openai_server.chat_requests) == asked  # neither the answered run nor the waiting one asked
    assert pending_review(out / "v1") is not None and _threads_left(pg, batch_id) == []


def test_a_prompts_file_the_nodes_cannot_see(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    """The driver sees the prompts file in a mount of its own (a private tmpfs); the nodes do not: refused
    before any work starts, naming the nodes, and no model is called."""
    openai_server.respond_with(keyed_responder(default_code=SMALL_PIL))
    hidden, out = tmp_path / "hidden", tmp_path / "out"
    hidden.mkdir()
    lines = "".join(json.dumps({"id": k, "prompt": keyed(k)}) + "\n" for k in ("h0", "h1"))
    command = _command(hidden / "p.jsonl", out, ray_cluster, pg, openai_server, tiny_img2img_dir)
    script = f"mount -t tmpfs none {hidden} && printf %s {shlex.quote(lines)} > {hidden}/p.jsonl && exec {shlex.join(command)}"
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, timeout=300, env=clean_env(), stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "cannot be read on" in proc.stderr and "every node" in proc.stderr, proc.stderr[-3000:]
    for node in ray_cluster.cpu_nodes:
        assert node.node_id[:8] in proc.stderr  # the nodes are named
    assert openai_server.chat_requests == []
    assert not any(out.glob("*/result.json"))


def _other_checkout(root: Path) -> Path:
    """A copy of this checkout whose sandbox/ differs by one file: another sandbox image tag."""
    import coco_agent

    package = Path(coco_agent.__file__).resolve().parent
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(package, root / "coco_agent", ignore=ignore)
    shutil.copytree(package.parent / "sandbox", root / "sandbox", ignore=ignore)
    (root / "prompts").symlink_to(package.parent / "prompts")
    (root / "sandbox" / "NODE-LOCAL-CHANGE").write_text("another build\n")
    return root


def test_mismatched_sandbox_images_are_refused(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    """A third sandbox node runs another checkout (its sandbox/ changed: another image tag): the batch is
    refused at start, naming that node and the tags, before any model call."""
    from coco_agent.sandbox.image import image_tag

    openai_server.respond_with(keyed_responder(default_code=SMALL_PIL))
    other = _other_checkout(tmp_path / "other")
    path = os.pathsep.join(
        [str(other), *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    )
    odd = ray_cluster.add_node(num_cpus=1, resources={"coco_sandbox": 1}, env_vars={"PYTHONPATH": path})
    ray_cluster.wait_for_nodes()
    try:
        keys = ["m0", "m1"]
        command = _command(
            _prompts(tmp_path, keys), tmp_path / "out", ray_cluster, pg, openai_server, tiny_img2img_dir
        )
        code, lines, err = _finish(
            _start(command, cwd=tmp_path)
        )  # Ray puts the driver's cwd on workers' path
    finally:
        ray_cluster.remove_node(odd)
    assert code == 2, err[-3000:]
    assert "sandbox images differ across nodes" in err, err[-3000:]
    assert image_tag() in err and err.count("coco-sandbox:") >= len(ray_cluster.cpu_nodes) + 1, err[
        -3000:
    ]  # every node with its tag
    assert not [e for e in lines if e.get("event") == "prompt"]
    assert openai_server.chat_requests == []


def test_postgres_goes_away_mid_batch(
    ray_cluster, postgres_server, openai_server, tiny_img2img_dir, tmp_path
):
    """Postgres stops while runs are in flight: the batch stops saying so (exit 2), the runs in flight write
    no result.json (they stay resumable); with Postgres back the same command finishes every prompt, and the
    prompts that had finished are not asked again."""
    if not postgres_server.running():
        postgres_server.start()
    coder = keyed_responder(default_code=SMALL_PIL)
    openai_server.respond_with(lambda body: Slow(1.5, coder(body)))
    keys = [f"p{i}" for i in range(8)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(prompts, out, ray_cluster, postgres_server.url, openai_server, tiny_img2img_dir)
    proc = _start(command)
    try:
        early = _run_until(proc, 2)
        postgres_server.stop()
        code, rest, err = _finish(proc)
    finally:
        proc.kill()
        if not postgres_server.running():
            postgres_server.start()
    assert code == 2, err[-3000:]
    assert "Postgres" in err and "rerun the same command" in err, err[-3000:]
    finished = {e["id"] for e in early + rest if e.get("event") == "prompt" and e.get("how") == "started"}
    assert {e["id"] for e in early} <= finished
    published = {k for k in keys if (out / k / "result.json").exists()}
    assert published <= finished  # no run that failed on the lost store left a result.json
    assert published != set(keys)  # the batch did stop early

    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    how = {e["id"]: e["how"] for e in lines if e.get("event") == "prompt"}
    assert all(how[k] == "skipped" for k in published)
    assert all(len(requests_for(openai_server, k)) == 1 for k in published)
    assert all(r["status"] == "accepted" for r in _results(out, keys).values())
    _assert_complete(out, keys)


def test_the_gpu_node_dies_mid_batch(ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path):
    """The node holding the RefineStage is killed mid-batch; the runs waiting on refinement wait, a new GPU
    node joins, the stage restarts there and every prompt ends refined (the lost batch refined again)."""
    coder = keyed_responder(default_code=SMALL_PIL)
    openai_server.respond_with(lambda body: Slow(1.0, coder(body)))
    keys = [f"g{i}" for i in range(8)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    proc = _start(_command(prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir))
    try:
        _run_until(proc, 1)
        ray_cluster.remove_node(ray_cluster.gpu_node, allow_graceful=False)
        time.sleep(8)  # refinements meet a dead stage and wait (the driver says so on its status line)
        ray_cluster.gpu_node = ray_cluster.add_node(num_cpus=1, num_gpus=1)
        code, rest, err = _finish(proc)
    finally:
        proc.kill()
    assert code == 0, err[-3000:]
    results = _results(out, keys)
    assert all(r["status"] == "accepted" and r["paths"]["final"] == "final.png" for r in results.values())
    assert all(len(requests_for(openai_server, k)) == 1 for k in keys)  # refinement redone, not drafting
    _assert_complete(out, keys)


def test_run_dirs_continue_across_engines_and_a_local_ray(
    ray_cluster, pg, openai_server, tiny_img2img_dir, tmp_path
):
    """OUT begun by `--engine local` (SQLite) is continued on the cluster (its finished prompts skipped, no
    model call); then `--engine ray` with no address starts a local Ray instance of its own (no Postgres: SQLite
    and file locks), finds every prompt finished, and leaves none of its processes behind."""
    openai_server.respond_with(keyed_responder(default_code=SMALL_PIL))
    keys = [f"x{i}" for i in range(5)]
    prompts, out = _prompts(tmp_path, keys), tmp_path / "out"
    command = _command(prompts, out, ray_cluster, pg, openai_server, tiny_img2img_dir)
    local = [*command, "--limit", "2"]
    local[local.index("--engine") + 1] = "local"
    code, lines, err = _finish(_start(local))
    assert code == 0, err[-3000:]
    assert sorted(e["id"] for e in lines if e.get("event") == "prompt") == keys[:2]

    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    how = {e["id"]: e["how"] for e in lines if e.get("event") == "prompt"}
    assert how == {k: "skipped" if k in keys[:2] else "started" for k in keys}
    assert all(len(requests_for(openai_server, k)) == 1 for k in keys)
    _assert_complete(out, keys)

    alone = [a for a in command if a not in (ray_cluster.address, pg)]
    for flag in ("--ray-address", "--pg-url"):
        alone.remove(flag)
    ray_tmp = Path(tempfile.mkdtemp(prefix="coco-lray-", dir="/tmp"))
    env = clean_env() | {"RAY_TMPDIR": str(ray_tmp), "COCO_RAY_SLOTS": "1"}
    proc = subprocess.run(
        alone, capture_output=True, text=True, timeout=400, env=env, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert {e["how"] for e in events if e.get("event") == "prompt"} == {"skipped"}
    assert all(len(requests_for(openai_server, k)) == 1 for k in keys)
    deadline = time.monotonic() + 30
    while _ray_processes(str(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes(str(ray_tmp)) == []  # the local instance went with its driver
    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_bench_longtext_on_the_cluster(ray_cluster, pg, openai_server, tmp_path):
    """`coco bench longtext --engine ray`: the benchmark's prompts drafted on the cluster's nodes, every run
    scored by the driver (local OCR), the same figures event as the local engine; a rerun redoes nothing."""
    from support.text_renders import HAS_RAPIDOCR, NO_RAPIDOCR, text_program

    from coco_agent.batch.longtext import find_prompts
    from coco_agent.batch.prompts_file import iter_prompts

    require(HAS_RAPIDOCR, NO_RAPIDOCR)
    items = list(iter_prompts(find_prompts("en"), 3))

    def respond(body):
        sent = json.dumps(body.get("messages"))
        item = next(i for i in items if json.dumps(i.prompt[:60])[1:-1] in sent)
        return text_program(item.texts)

    openai_server.respond_with(respond)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "coco_agent.cli", "bench", "longtext", "--limit", "3", "-o", str(out),
        "--engine", "ray", "--ray-address", ray_cluster.address, "--pg-url", pg, "--json", "--workers", "2",
        "--llm", "openai:test-model", "--vlm", "none", "--base-url", openai_server.base_url,
        "--sandbox", "docker", "--refiner", "none", "--ocr", "rapidocr",
    ]  # fmt: skip
    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    assert sorted(e["id"] for e in lines if e.get("event") == "prompt") == sorted(i.id for i in items)
    bench = next(e for e in lines if e.get("event") == "bench")
    assert bench["n"] == 3 and bench["official"] is False
    assert bench["final_text_score"] >= 0.9, bench  # each prompt's text drawn verbatim: what the OCR reads
    for item in items:
        result = json.loads((out / item.id / "result.json").read_text())
        assert result["status"] == "accepted" and result["scores"]["final_text_score"] >= 0.8, result
        assert result["text_scores"]["ocr"] == "rapidocr" and result["text_scores"]["lang"] == "en"
    calls = len(openai_server.chat_requests)
    code, lines, err = _finish(_start(command))
    assert code == 0, err[-3000:]
    assert {e["how"] for e in lines if e.get("event") == "prompt"} == {"skipped"}
    assert len(openai_server.chat_requests) == calls
    assert (
        next(e for e in lines if e.get("event") == "bench")["final_text_score"] == bench["final_text_score"]
    )
