"""The metered model calls nodes make: each goes through ``models.calls.call_model`` (concurrency, retries), is
timed, has its usage read and priced, is appended to calls.jsonl with its output, and counts against the batch
budget. Under ``replay.replaying`` the recorded output comes back instead and no model is called.

- ``invoke``: one answer (``model.invoke``).
- ``invoke_structured``: ``model.with_structured_output(schema, include_raw=True)``.
- ``invoke_many``: n answers to the same messages: one request with ``n`` where the provider takes it (OpenAI),
  topped up (or, elsewhere, made) with parallel requests at varied temperature and seed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage

from coco_agent.ledger import replay
from coco_agent.ledger.budget import note_spent
from coco_agent.ledger.prices import PriceTable, load_prices
from coco_agent.ledger.records import append_call, call_id, make_record
from coco_agent.ledger.usage import Usage, served_model, usage_of
from coco_agent.models.calls import call_model
from coco_agent.models.sampling import varied

N_PROVIDERS = ("ChatOpenAI", "AzureChatOpenAI")  # chat model classes whose API answers n choices per request


@dataclass
class Site:
    """Where a call is made: which run, node, round, candidate and role (the call id and the record need it)."""

    run_dir: str
    node: str
    round: int
    role: str
    cand: int | None = None
    prices: PriceTable = field(default_factory=load_prices)


class ReplayedError(RuntimeError):
    """A recorded call's failure, raised again by a replay (its ``__name__`` is set to the original's)."""


def label_of(model: Any) -> str:
    from coco_agent.models import describe_model

    return describe_model(model)


def invoke(
    site: Site, model: Any, messages: list, *, seq: int = 0, sampling: dict[str, Any] | None = None
) -> tuple[Any, dict]:
    """``model.invoke(messages)``, metered (``sampling``: what this call was varied with, for the record).
    Returns the answer and its ledger record."""
    cid = call_id(site.node, site.round, site.cand, seq)
    played = _played(cid)
    if played is not None:
        output, record = _replayed(site, played)
        return _restore_message(output), record
    label = label_of(model)
    started = time.monotonic()
    try:
        answer = call_model(model.invoke, messages)
    except Exception as exc:
        _failed(site, cid, label, started, exc)
        raise
    record = _record(site, cid, label, answer, started, sampling=sampling)
    _keep(site, record, _message_dict(answer))
    return answer, record


def invoke_structured(
    site: Site, model: Any, schema: type, messages: list, *, seq: int = 0
) -> tuple[dict, dict]:
    """``model.with_structured_output(schema, include_raw=True).invoke(messages)``, metered: ``{"raw",
    "parsed", "parsing_error"}`` and the record. NotImplementedError (no structured output) is not a call."""
    cid = call_id(site.node, site.round, site.cand, seq)
    played = _played(cid)
    if played is not None:
        output, record = _replayed(site, played)
        output = output if isinstance(output, dict) else {}
        parsed = output.get("parsed")
        result = {
            "raw": _restore_message(output.get("raw")) if output.get("raw") else None,
            "parsed": schema.model_validate(parsed) if isinstance(parsed, dict) else None,
            "parsing_error": output.get("parsing_error"),
        }
        return result, record
    structured = model.with_structured_output(schema, include_raw=True)
    label = label_of(model)
    started = time.monotonic()
    try:
        out = call_model(structured.invoke, messages)
    except Exception as exc:
        _failed(site, cid, label, started, exc)
        raise
    raw = out.get("raw") if isinstance(out, dict) else None
    parsed = out.get("parsed") if isinstance(out, dict) else None
    record = _record(site, cid, label, raw, started)
    error = out.get("parsing_error") if isinstance(out, dict) else None
    _keep(
        site,
        record,
        {
            "raw": _message_dict(raw) if raw is not None else None,
            "parsed": parsed.model_dump() if hasattr(parsed, "model_dump") else None,
            "parsing_error": str(error)[:1000] if error else None,
        },
    )
    return {"raw": raw, "parsed": parsed, "parsing_error": error}, record


def invoke_many(
    site: Site, model: Any, messages: list, n: int, samplings: list[dict[str, Any]]
) -> tuple[list[Any], list[dict]]:
    """``n`` answers to ``messages``: first one request asking for ``n`` choices where the provider has that
    (a server that ignores ``n`` answers fewer), then parallel requests for what is missing, request ``k``
    with ``samplings[k]`` (temperature, seed). Returns the answers and their records; a failed request raises
    once every other one has finished (their records kept)."""
    answers: list[Any] = []
    records: list[dict] = []
    seq = 0
    if n > 1 and _asks_n(site, model):
        got, record = _invoke_n(site, model, messages, n, seq)
        answers += got
        records.append(record)
        seq += 1
    missing = n - len(answers)
    if missing <= 0:
        return answers[:n], records
    jobs = [
        (seq + i, samplings[(len(answers) + i) % len(samplings)] if samplings else {}) for i in range(missing)
    ]

    def one(job: tuple[int, dict[str, Any]]) -> tuple[Any, dict]:
        return invoke(site, varied(model, job[1]), messages, seq=job[0], sampling=job[1] or None)

    results: list[Any] = []
    with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
        futures = [pool.submit(copy_context().run, one, job) for job in jobs]
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:
                results.append(exc)
    errors = [r for r in results if isinstance(r, Exception)]
    for result in results:
        if not isinstance(result, Exception):
            answers.append(result[0])
            records.append(result[1])
    if errors and not answers:
        raise errors[0]
    return answers, records


def _asks_n(site: Site, model: Any) -> bool:
    """Whether this round's answers start with one request for n choices (a replay: whether the recorded one
    did)."""
    recording = replay.current()
    if recording is not None:
        first = recording.calls.get(call_id(site.node, site.round, site.cand, 0)) or {}
        return "n" in (first.get("sampling") or {})
    return type(model).__name__ in N_PROVIDERS


def _invoke_n(site: Site, model: Any, messages: list, n: int, seq: int) -> tuple[list[Any], dict]:
    """One request for ``n`` choices (``model.generate`` with ``n``); usage is the request's, counted once."""
    cid = call_id(site.node, site.round, site.cand, seq)
    played = _played(cid)
    if played is not None:
        output, record = _replayed(site, played)
        choices = (output if isinstance(output, dict) else {}).get("choices") or []
        return [_restore_message(o) for o in choices], record
    label = label_of(model)
    started = time.monotonic()
    try:
        result = call_model(model.generate, [messages], n=n)
    except Exception as exc:
        _failed(site, cid, label, started, exc)
        raise
    choices = [g.message for g in (result.generations[0] if result.generations else [])]
    first = choices[0] if choices else None  # every choice carries the whole request's usage: count it once
    record = _record(site, cid, label, first, started, outputs=len(choices), sampling={"n": n})
    _keep(site, record, {"choices": [_message_dict(m) for m in choices]})
    return choices, record


def _played(cid: str) -> dict[str, Any] | None:
    recording = replay.current()
    return recording.take(cid) if recording is not None else None


def _replayed(site: Site, played: dict[str, Any]) -> tuple[Any, dict]:
    """A replayed call: its recorded output and record (appended to the new run's calls.jsonl, counted against
    the batch budget); a recorded failure is raised again, under the original exception's name."""
    output = played.pop("output", None)
    played.pop("ts", None)
    append_call(site.run_dir, played, output)
    note_spent(played)
    if not played.get("ok", True):
        info = output if isinstance(output, dict) else {}
        name = str(info.get("error_type") or "Error")
        base: type[Exception] = NotImplementedError if name == "NotImplementedError" else ReplayedError
        raise type(name, (base,), {})(str(info.get("message") or played.get("error") or ""))
    return output, played


def _record(
    site: Site,
    cid: str,
    label: str,
    answer: Any,
    started: float,
    *,
    outputs: int = 1,
    sampling: dict[str, Any] | None = None,
) -> dict:
    usage = usage_of(answer) if answer is not None else Usage()
    return make_record(
        cid=cid,
        node=site.node,
        rnd=site.round,
        cand=site.cand,
        role=site.role,
        label=label,
        served=served_model(answer) if answer is not None else None,
        usage=usage,
        seconds=time.monotonic() - started,
        prices=site.prices,
        outputs=outputs,
        sampling=sampling,
    )


def _failed(site: Site, cid: str, label: str, started: float, exc: BaseException) -> None:
    record = make_record(
        cid=cid,
        node=site.node,
        rnd=site.round,
        cand=site.cand,
        role=site.role,
        label=label,
        served=None,
        usage=Usage(),
        seconds=time.monotonic() - started,
        prices=site.prices,
        outputs=0,
        error=f"{type(exc).__name__}: {exc}",
    )
    _keep(site, record, {"error_type": type(exc).__name__, "message": str(exc)[:2000]})


def _keep(site: Site, record: dict, output: Any) -> None:
    append_call(site.run_dir, record, output)
    note_spent(record)


def _message_dict(message: Any) -> dict[str, Any]:
    """What is kept of an answer: its content, tool calls, the served model and the usage."""
    if not isinstance(message, AIMessage):
        return {"content": str(getattr(message, "content", message))}
    meta = {k: v for k, v in (message.response_metadata or {}).items() if k in ("model_name", "model")}
    return {
        "content": message.content,
        "tool_calls": [
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id")}
            for c in message.tool_calls or []
        ],
        "response_metadata": meta,
        "usage_metadata": dict(message.usage_metadata) if message.usage_metadata else None,
    }


def _restore_message(data: Any) -> AIMessage:
    data = data if isinstance(data, dict) else {"content": str(data or "")}
    calls = [
        {"name": c.get("name") or "", "args": c.get("args") or {}, "id": c.get("id"), "type": "tool_call"}
        for c in data.get("tool_calls") or []
    ]
    message = AIMessage(
        content=data.get("content") or "",
        tool_calls=calls,
        response_metadata=data.get("response_metadata") or {},
    )
    if data.get("usage_metadata"):
        message.usage_metadata = data["usage_metadata"]
    return message
