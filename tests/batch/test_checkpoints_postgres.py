"""Checkpoints in a real Postgres (started by the test, loopback only): runs keyed batch_id:prompt_id, pruned,
continued from a run the SQLite store began, per-prompt advisory locks, and a Postgres that goes away mid-run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap

import pytest
from support.batch_helpers import keyed, keyed_responder, requests_for
from support.programs import ACCEPT, GOOD_BARS

from coco_agent.checkpoints import checkpoint_store
from coco_agent.checkpoints.postgres import PostgresStore, check_reachable, masked
from coco_agent.context import RunContext
from coco_agent.errors import CheckpointStoreLost, PostgresUnavailable, PromptBusy
from coco_agent.rundir import CHECKPOINT_FILE, RESULT_FILE
from coco_agent.runner import _compiled_graph, aresume_run, astart_run, new_run, run_config
from coco_agent.trace import read_trace


@pytest.fixture
def pg_url(postgres_server):
    if not postgres_server.running():
        postgres_server.start()
    check_reachable(postgres_server.url)
    return postgres_server.url


def _ctx(server) -> RunContext:
    return RunContext(
        llm="openai:test-model", vlm="openai:test-model", base_url=server.base_url, sandbox="process"
    )


def test_a_run_keeps_its_checkpoints_in_postgres_under_batch_and_prompt(pg_url, openai_server, tmp_path):
    openai_server.respond_with(keyed_responder())
    run_dir = tmp_path / "p1"

    async def go():
        store = PostgresStore(pg_url, "batchA")
        with checkpoint_store(store):
            result = await astart_run(keyed("p1"), _ctx(openai_server), run_dir)
        threads = await store.threads()
        await store.prune("batchA:p1")
        left = await store.threads()
        await store.close()
        return result, threads, left

    result, threads, left = asyncio.run(go())
    assert result["status"] == "accepted", result
    assert threads == ["batchA:p1"] and left == []
    assert not (run_dir / CHECKPOINT_FILE).exists()
    assert {"node": "runner", "decision": "start", "checkpoints": "postgres"}.items() <= read_trace(run_dir)[
        0
    ].items()


def test_a_run_the_sqlite_store_began_continues_in_postgres(pg_url, openai_server, tmp_path):
    """Stopped after `check` under SQLite (the local engine), resumed under Postgres (the Ray engine): the
    checkpoint is copied over, the code writer is not asked again, and the run finishes."""
    openai_server.respond_with(keyed_responder())
    ctx = _ctx(openai_server)
    run_dir = tmp_path / "moved"

    async def begin():
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        thread, inputs = new_run(keyed("moved"), ctx, run_dir)
        async with AsyncSqliteSaver.from_conn_string(str(run_dir / CHECKPOINT_FILE)) as saver:
            graph = _compiled_graph().copy({"checkpointer": saver})
            config = run_config(ctx, thread, None, None)
            async for chunk in graph.astream(
                inputs, config, context=ctx, stream_mode="updates", durability="sync"
            ):
                if "check" in chunk:
                    break

    async def finish():
        store = PostgresStore(pg_url, "batchB")
        with checkpoint_store(store):
            result = await aresume_run(run_dir)
        await store.close()
        return result

    asyncio.run(begin())
    assert not (run_dir / RESULT_FILE).exists()
    assert len(requests_for(openai_server, "moved")) == 1
    result = asyncio.run(finish())
    assert result["status"] == "accepted", result
    assert len(requests_for(openai_server, "moved")) == 1  # the code writer answered once, before the move
    assert len(requests_for(openai_server, "moved", role="critic")) == 1
    assert [t["node"] for t in read_trace(run_dir)].count("write_code") == 1


def test_a_run_a_ray_batch_left_in_postgres_continues_on_the_local_engine(pg_url, openai_server, tmp_path):
    """A batch run as the Ray engine runs it (checkpoints in Postgres under batch_id:prompt_id) stops after
    `check`; `coco batch --engine local --pg-url` on the same OUT resumes it from that checkpoint (copied into
    the run's checkpoints.sqlite, the Postgres thread deleted): the code writer is not asked again."""
    from coco_agent.batch import BatchOptions, run_batch
    from coco_agent.batch.prompts_file import iter_prompts
    from coco_agent.batch.work import begin_batch

    openai_server.respond_with(keyed_responder())
    ctx = _ctx(openai_server)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(keyed("ray1") + "\n" + keyed("ray2") + "\n")
    out = tmp_path / "out"
    options = BatchOptions(prompts, out, ctx, engine="ray", pg_url=pg_url)
    batch_id = begin_batch(options)["batch_id"]
    first = next(iter_prompts(prompts))

    async def begin():  # what a DraftStage does, cut short after the draft was checked
        run_dir = options.run_dir(first)
        _, inputs = new_run(first.prompt, ctx, run_dir)
        store = PostgresStore(pg_url, batch_id)
        async with store.saver(run_dir, store.key(run_dir)) as saver:
            graph = _compiled_graph().copy({"checkpointer": saver})
            config = run_config(ctx, store.key(run_dir), None, None)
            async for chunk in graph.astream(
                inputs, config, context=ctx, stream_mode="updates", durability="sync"
            ):
                if "check" in chunk:
                    break
        threads = await store.threads()
        await store.close()
        return run_dir, threads

    run_dir, threads = asyncio.run(begin())
    assert threads == [f"{batch_id}:{first.id}"] and not (run_dir / RESULT_FILE).exists()
    summary = run_batch(BatchOptions(prompts, out, ctx, pg_url=pg_url))
    assert summary["statuses"]["accepted"] == 2, summary
    assert len(requests_for(openai_server, "ray1")) == 1  # answered once, under the Ray engine
    assert len(requests_for(openai_server, "ray2")) == 1
    trace = read_trace(run_dir)
    assert [t["node"] for t in trace].count("write_code") == 1
    assert any(t.get("decision") == "adopted" for t in trace)
    assert (run_dir / CHECKPOINT_FILE).exists()

    async def left():
        store = PostgresStore(pg_url, batch_id)
        try:
            return await store.threads()
        finally:
            await store.close()

    assert asyncio.run(left()) == []


def test_a_second_holder_waits_and_a_dead_holder_frees_the_lock(pg_url):
    async def busy():
        store = PostgresStore(pg_url, "locks")
        async with store.hold("locks:a"):
            with pytest.raises(PromptBusy, match="another worker is running locks:a"):
                async with store.hold("locks:a", wait_s=0.5):
                    pass
            async with store.hold("locks:b", wait_s=0.5):  # another prompt: free
                pass
        async with store.hold("locks:a", wait_s=0.5):  # released with its session
            pass

    asyncio.run(busy())
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import asyncio, sys
                from coco_agent.checkpoints.postgres import PostgresStore
                async def main():
                    async with PostgresStore({pg_url!r}, "locks").hold("locks:dies"):
                        print("held", flush=True)
                        await asyncio.sleep(600)
                asyncio.run(main())
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"

        async def blocked():
            async with PostgresStore(pg_url, "locks").hold("locks:dies", wait_s=0.5):
                pass

        with pytest.raises(PromptBusy):
            asyncio.run(blocked())
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

        async def freed():
            async with PostgresStore(pg_url, "locks").hold("locks:dies", wait_s=20):
                return True

        assert asyncio.run(freed())
    finally:
        holder.kill()
        holder.wait(10)


def test_postgres_that_goes_away_mid_run_leaves_the_run_resumable(
    postgres_server, pg_url, openai_server, tmp_path
):
    """The server stops while the code writer answers: the run raises CheckpointStoreLost, writes no
    result.json (a rerun resumes it), and once Postgres is back the run finishes from its last checkpoint."""

    def stop_then_answer(body):
        if postgres_server.running():
            postgres_server.stop()
        return GOOD_BARS

    openai_server.respond_with(keyed_responder(coder={"gone": [stop_then_answer]}, critic={"gone": [ACCEPT]}))
    run_dir = tmp_path / "gone"
    ctx = _ctx(openai_server)

    async def run(fn, *args, **kwargs):
        store = PostgresStore(pg_url, "batchC")
        try:
            with checkpoint_store(store):
                return await fn(*args, **kwargs)
        finally:
            await store.close()

    with pytest.raises(CheckpointStoreLost, match="postgres checkpoints unavailable"):
        asyncio.run(run(astart_run, keyed("gone"), ctx, run_dir))
    assert not (run_dir / RESULT_FILE).exists()
    assert read_trace(run_dir)[-1]["decision"] == "store_lost"
    with pytest.raises(PostgresUnavailable, match="cannot use Postgres at .* start it"):
        check_reachable(pg_url)
    postgres_server.start()
    result = asyncio.run(run(aresume_run, run_dir))
    assert result["status"] == "accepted", result
    assert len(requests_for(openai_server, "gone")) <= 2  # at most the node that was running is redone


def _stopper_at_finalize(postgres_server):
    """A progress callback that stops the server as finalize writes result.json."""

    def stop_at_finalize(node, update):
        if node == "finalize" and postgres_server.running():
            postgres_server.stop()

    return stop_at_finalize


def test_postgres_that_goes_away_once_the_run_is_published_leaves_it_finished(
    postgres_server, pg_url, openai_server, tmp_path
):
    """The server stops as finalize writes result.json (before the run's last checkpoint, or the state read
    after it): the run is finished, so it returns its result rather than raising CheckpointStoreLost (which
    would leave a published run unreported), and the trace says what happened."""
    openai_server.respond_with(keyed_responder())
    run_dir = tmp_path / "late"

    stop_at_finalize = _stopper_at_finalize(postgres_server)

    async def go():
        store = PostgresStore(pg_url, "batchD")
        try:
            with checkpoint_store(store):
                return await astart_run(
                    keyed("late"), _ctx(openai_server), run_dir, on_update=stop_at_finalize
                )
        finally:
            await store.close()

    try:
        result = asyncio.run(go())
    finally:
        if not postgres_server.running():
            postgres_server.start()
    assert result["status"] == "accepted", result
    assert result == json.loads((run_dir / RESULT_FILE).read_text())
    last = read_trace(run_dir)[-1]
    assert last["node"] == "runner" and last["decision"] == "store_lost_after_publish", last


def test_postgres_that_goes_away_as_a_reopened_run_publishes_leaves_it_finished(
    postgres_server, pg_url, openai_server, tmp_path
):
    """The same for a run a rerun continues: a batch budget stopped it (its result.json says so), the rerun
    reopens it, and the server stops as finalize writes the new result.json: that new file is this drive's, so
    the run is finished (the old file being there before must not make it look unpublished)."""
    from coco_agent.ledger.budget import BatchBudget, batch_budget

    crash = "```python\nraise ValueError('boom: the table is broken')\n```"
    openai_server.respond_with(keyed_responder(coder={"again": [crash]}))
    run_dir = tmp_path / "again"

    stop_at_finalize = _stopper_at_finalize(postgres_server)

    async def go():
        store = PostgresStore(pg_url, "batchE")
        try:
            with checkpoint_store(store):
                with batch_budget(BatchBudget(tokens=1)):
                    stopped = await astart_run(keyed("again"), _ctx(openai_server), run_dir)
                continued = await aresume_run(run_dir, reopen=True, on_update=stop_at_finalize)
                return stopped, continued
        finally:
            await store.close()

    try:
        stopped, result = asyncio.run(go())
    finally:
        if not postgres_server.running():
            postgres_server.start()
    assert stopped["status"] == "budget" and stopped["budget"]["stop"]["by"] == "batch", stopped
    assert result["status"] == "accepted" and result["rounds"] == 2, result
    assert result == json.loads((run_dir / RESULT_FILE).read_text())
    last = read_trace(run_dir)[-1]
    assert last["node"] == "runner" and last["decision"] == "store_lost_after_publish", last
    assert len(requests_for(openai_server, "again")) == 2  # round 1 once, round 2 once


def test_unreachable_postgres_names_the_fix_and_hides_the_password():
    with pytest.raises(PostgresUnavailable) as raised:
        check_reachable("postgresql://coco:s3cret@127.0.0.1:9/coco")
    message = str(raised.value)
    assert "s3cret" not in message and "coco:***@127.0.0.1:9" in message
    assert "COCO_PG_URL" in message
    assert masked("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
