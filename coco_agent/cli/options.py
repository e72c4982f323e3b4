"""Options several commands share, declared once: the run options (`generate`, `batch`, `bench longtext`) and the
batch options (`batch`, `bench longtext`), and how they become a ``RunContext`` and ``BatchOptions``.

A run option left out is None, which means "the environment's value, else ``RunContext``'s default"
(``coco_agent.environment.context_from_env``): the defaults shown in --help are read from ``RunContext``, never
repeated here.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from coco_agent import formats
from coco_agent.context import REVIEW_POINTS, RunContext
from coco_agent.environment import ENV_VARS
from coco_agent.sandbox.backends import KINDS

if TYPE_CHECKING:
    from coco_agent.batch import BatchOptions

DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(RunContext) if f.default is not MISSING}
_TYPES = get_type_hints(RunContext)
FORMATS: tuple[str, ...] = formats.names()  # the format registry (coco_agent/formats/)
SANDBOXES: tuple[str, ...] = KINDS  # the sandbox backends' table (coco_agent/sandbox/backends.py)
OCR_ENGINES = ("auto", "rapidocr", "tesseract")

DEFAULT_WORKERS = 4  # runs at once
DEFAULT_DEADLINE_S = 1800.0  # seconds per prompt of a batch
DEFAULT_RETRIES = 3  # extra tries of a model request in a batch


@dataclass(frozen=True)
class RunOption:
    """One run option: its flags, the RunContext field it sets, and how argparse reads it."""

    flag: str
    field: str
    help: str
    kwargs: tuple[tuple[str, Any], ...] = ()


def _default(name: str) -> str:
    value = DEFAULTS[name]
    return f" (default {value:g})" if isinstance(value, float) else f" (default {value})"


def _env(name: str) -> str:
    return f"; env {ENV_VARS[name]}" if name in ENV_VARS else ""


RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "--llm",
        "llm",
        "code writer 'provider:model' (openai:, anthropic:, ollama:, hf:PATH)" + _env("llm"),
    ),
    RunOption(
        "--vlm", "vlm", "critic 'provider:model', or 'none'" + _env("vlm") + "; default: same as --llm"
    ),
    RunOption(
        "--base-url",
        "base_url",
        "OpenAI-compatible server URL (vLLM, llama.cpp, LM Studio)" + _env("base_url"),
    ),
    RunOption(
        "--refiner",
        "refiner",
        "'none', or a diffusers pipeline by hub id or local dir (img2img, FLUX.1 Kontext, Qwen-Image-Edit, "
        "SDXL ControlNet); inpaint:NAME keeps the draft's text pixels; controlnet:CONTROLNET+BASE"
        + _default("refiner"),
    ),
    RunOption(
        "--max-rounds", "max_rounds", "attempts before giving up" + _default("max_rounds"), (("type", int),)
    ),
    RunOption(
        "--format",
        "format",
        "drawing code; auto: chosen per prompt (the trace and the result say why)" + _default("format"),
        (("choices", ("auto", *FORMATS)),),
    ),
    RunOption("--sandbox", "sandbox", "where programs run" + _default("sandbox"), (("choices", SANDBOXES),)),
    RunOption(
        "--timeout",
        "timeout_s",
        "seconds per program in the sandbox" + _default("timeout_s"),
        (("type", float),),
    ),
    RunOption(
        "--memory-mb",
        "memory_mb",
        "memory per program in the sandbox" + _default("memory_mb"),
        (("type", int),),
    ),
    RunOption(
        "--model-timeout",
        "model_timeout_s",
        "seconds per model call; a warning names a provider that has no timeout setting"
        + _default("model_timeout_s"),
        (("type", float),),
    ),
    RunOption(
        "--refine-strength",
        "refine_strength",
        "0-1; default: chosen by prompt kind (0 keeps the draft)",
        (("type", float),),
    ),
    RunOption(
        "--refine-margin",
        "refine_margin",
        "largest CLIP drop a refined image may cost" + _default("refine_margin"),
        (("type", float),),
    ),
    RunOption(
        "--text-mode",
        "text_mode",
        "the draft's text in refinement: layered (drawn again on top, never diffused), protect (kept by "
        "inpainting and the guardrail), free (redrawn); auto: by prompt kind" + _default("text_mode"),
        (("choices", ("auto", "layered", "protect", "free")),),
    ),
    RunOption(
        "--no-refine-guard",
        "refine_guard",
        "keep the refined image even if scores drop",
        (("action", "store_false"),),
    ),
    RunOption(
        "--no-repairs",
        "repairs",
        "run the model's program as written (no indentation/colour/legend/keyword repairs)",
        (("action", "store_false"),),
    ),
    RunOption(
        "--review",
        "review",
        "pause for a person (`coco review RUN`) before the draft is refined, before the refined image counts, or "
        "both" + _default("review"),
        (("choices", REVIEW_POINTS),),
    ),
    RunOption(
        "--ocr",
        "ocr_engine",
        "OCR for scores" + _env("ocr_engine") + _default("ocr_engine"),
        (("choices", OCR_ENGINES),),
    ),
    RunOption(
        "--clip",
        "clip_model",
        "open_clip ARCH:TAG, hf-hub:org/repo, local dir, auto or none"
        + _env("clip_model")
        + _default("clip_model"),
    ),
    RunOption(
        "--candidates",
        "candidates",
        "programs asked for per round, rendered in parallel and ranked; the critic picks among the best"
        + _default("candidates"),
        (("type", int),),
    ),
    RunOption(
        "--critique",
        "critique",
        "single: one critic; split: a visual critic, then a code critic mapping problems to lines"
        + _default("critique"),
        (("choices", ("single", "split")),),
    ),
    RunOption(
        "--temperature",
        "temperature",
        "sampling temperature of every model (default: the provider's)",
        (("type", float),),
    ),
    RunOption(
        "--max-tokens", "max_tokens", "most tokens per answer (default: the provider's)", (("type", int),)
    ),
    RunOption(
        "--budget-usd",
        "budget_usd",
        "dollars a run may spend (stops cleanly, status budget)",
        (("type", float),),
    ),
    RunOption("--budget-tokens", "budget_tokens", "tokens (in + out) a run may spend", (("type", int),)),
    RunOption("--prices", "prices", "a price file over the shipped table (JSON)" + _env("prices")),
)
# generate / resume only (a batch's --deadline is its hard per-prompt stop): seconds of node time a run may take
DEADLINE_OPTION = RunOption(
    "--deadline",
    "deadline_s",
    "seconds of node time a run may take (stops cleanly, status budget)",
    (("type", float),),
)


def add_run_options(parser: argparse.ArgumentParser, *, deadline: bool = False) -> None:
    """The options of every command that runs the agent (each sets one RunContext field; absent: None);
    ``deadline``: also the clean per-run --deadline (`generate`)."""
    for option in (*RUN_OPTIONS, DEADLINE_OPTION) if deadline else RUN_OPTIONS:
        kwargs = dict(option.kwargs)
        if "action" not in kwargs and "choices" not in kwargs:
            kwargs["metavar"] = option.flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(option.flag, dest=option.field, default=None, help=option.help, **kwargs)


def context_from_args(args: argparse.Namespace) -> RunContext:
    """The run context of a command: its run options over the environment over RunContext's defaults."""
    from coco_agent.environment import context_from_env

    return context_from_env({o.field: getattr(args, o.field, None) for o in (*RUN_OPTIONS, DEADLINE_OPTION)})


def add_batch_options(parser: argparse.ArgumentParser, *, what: str, retry_failed: bool = True) -> None:
    """The options of every command that runs many prompts through the batch engine (`batch`, `bench
    longtext`); `what` says what --json prints last (the summary, the benchmark figures)."""
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="runs at once (default %(default)s)"
    )
    parser.add_argument("--limit", type=int, help="only the first N prompts")
    add_engine_option(parser)
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help="seconds per prompt before it is stopped and marked failed (default %(default)g; 0: none)",
    )
    parser.add_argument(
        "--model-concurrency", type=int, help="model requests at once, over all runs (default: no bound)"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=DEFAULT_RETRIES,
        help="extra tries of a model request on HTTP 429/5xx or a timeout, with backoff (default %(default)s)",
    )
    parser.add_argument(
        "--batch-budget-usd",
        type=float,
        help="dollars the whole batch may spend: no new prompt starts past it",
    )
    parser.add_argument("--batch-budget-tokens", type=int, help="tokens the whole batch may spend")
    parser.add_argument(
        "--batch-deadline", type=float, help="seconds the batch may take: no new prompt starts past it"
    )
    if retry_failed:
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="start prompts that ended failed over (default: keep them)",
        )
    parser.add_argument(
        "--refine-batch",
        type=int,
        default=4,
        help="drafts of the same size refined in one pipeline call, at most (default %(default)s)",
    )
    parser.add_argument(
        "--refine-wait-ms",
        type=float,
        default=50.0,
        help="how long a draft waits for others to fill its refine batch (default %(default)g ms)",
    )
    parser.add_argument(
        "--ray-address",
        help="--engine ray: the cluster (host:6379, or auto); default env COCO_RAY_ADDRESS, else a local Ray",
    )
    parser.add_argument(
        "--pg-url",
        help="--engine ray: Postgres for checkpoints (postgresql://...); --engine local: continue the runs a "
        "Ray batch left there; default env COCO_PG_URL",
    )
    parser.add_argument(
        "--force", action="store_true", help="use OUT even when another batch or other settings made it"
    )
    parser.add_argument(
        "--json", action="store_true", help=f"one JSON line per finished prompt, {what} last; no display"
    )


def batch_problem(args: argparse.Namespace) -> str:
    """Why the batch options cannot work ("" when they can)."""
    if args.workers < 1:
        return f"--workers must be at least 1, got {args.workers}"
    if args.limit is not None and args.limit < 1:
        return f"--limit must be at least 1, got {args.limit}"
    if args.deadline < 0:
        return f"--deadline must be 0 (none) or more seconds, got {args.deadline:g}"
    if args.model_concurrency is not None and args.model_concurrency < 1:
        return f"--model-concurrency must be at least 1, got {args.model_concurrency}"
    if args.retries < 0:
        return f"--retries must be 0 or more, got {args.retries}"
    if args.refine_batch < 1:
        return f"--refine-batch must be at least 1, got {args.refine_batch}"
    if args.refine_wait_ms < 0:
        return f"--refine-wait-ms must be 0 or more, got {args.refine_wait_ms:g}"
    from coco_agent.ledger.budget import limits_problem

    return limits_problem(
        getattr(args, "batch_budget_usd", None),
        getattr(args, "batch_budget_tokens", None),
        getattr(args, "batch_deadline", None),
        "batch-",
    )


def options_from_args(args: argparse.Namespace, prompts: Any, ctx: RunContext | None = None) -> BatchOptions:
    """Batch options from the flags `coco batch` and `coco bench longtext` share."""
    from coco_agent.batch import BatchOptions
    from coco_agent.environment import cluster_from_env

    cluster = cluster_from_env()
    return BatchOptions(
        prompts=prompts,
        out=Path(args.out),
        ctx=ctx if ctx is not None else context_from_args(args),
        workers=args.workers,
        limit=args.limit,
        force=args.force,
        deadline_s=args.deadline or None,
        model_concurrency=args.model_concurrency,
        retries=args.retries,
        retry_failed=getattr(args, "retry_failed", False),
        engine=getattr(args, "engine", "local"),
        batch_budget_usd=getattr(args, "batch_budget_usd", None),
        batch_budget_tokens=getattr(args, "batch_budget_tokens", None),
        batch_deadline_s=getattr(args, "batch_deadline", None),
        refine_batch=getattr(args, "refine_batch", 4),
        refine_wait_s=getattr(args, "refine_wait_ms", 50.0) / 1000,
        ray_address=getattr(args, "ray_address", None) or cluster["ray_address"],
        pg_url=getattr(args, "pg_url", None) or cluster["pg_url"],
    )


def unpriced_budget(ctx: RunContext) -> None:
    """A dollar budget with a model the price table does not know cannot be kept: ValueError naming it."""
    from coco_agent.ledger.prices import expected_label, load_prices

    if ctx.budget_usd is None:
        return
    table = load_prices(ctx.prices)
    roles = [("coder", ctx.llm)]
    if not (isinstance(ctx.vlm, str) and ctx.vlm.strip().lower() == "none"):
        roles.append(("critic", ctx.vlm))
    for role, spec in roles:
        label = expected_label(spec, ctx.base_url)
        if label is not None and table.lookup(label) is None:
            raise ValueError(
                f"--budget-usd needs the price of every model, and the price table has none for the {role} "
                f"{label}: add it to a price file (--prices FILE or COCO_PRICES; "
                f'{{"models": {{"{label}": {{"input": 0.4, "output": 1.6}}}}}}, dollars per million tokens), '
                "or use --budget-tokens"
            )


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    """`--engine`: which engine of the table runs the prompts (an unknown name is a usage error)."""
    from coco_agent.engines import DEFAULT_ENGINE, ENGINES, engine_help

    parser.add_argument("--engine", choices=list(ENGINES), default=DEFAULT_ENGINE, help=engine_help())


def settle(ctx: RunContext) -> RunContext:
    """Name the run's models now (auto-detecting the open roles; ModelChoiceError when none can be found), check
    the settings (ValueError, PriceFileError: usage errors), refuse a dollar budget for a model with no price,
    and warn about each model that --model-timeout or a sampling setting cannot reach."""
    from coco_agent.cli.display import warn
    from coco_agent.environment import settle_models
    from coco_agent.models.resolve import ignores_timeout, sampling_gaps
    from coco_agent.models.sampling import Sampling

    settle_models(ctx)
    ctx.validate_search()
    from coco_agent.models.gguf import check_gguf, is_gguf

    for spec in dict.fromkeys(s for s in (ctx.llm, ctx.vlm) if isinstance(s, str)):
        if spec.strip().startswith("hf:") and is_gguf(spec):
            check_gguf(Path(spec.strip()[3:]))  # ModelChoiceError (a usage error) before anything runs
    unpriced_budget(ctx)
    for spec in dict.fromkeys(s for s in (ctx.llm, ctx.vlm) if isinstance(s, str)):
        gaps = [g for g in sampling_gaps(spec, Sampling(ctx.temperature, ctx.max_tokens, None)) if g]
        if gaps:
            warn(f"{', '.join(gaps)} cannot reach {spec}: its chat model has no such setting")
    for spec in dict.fromkeys(s for s in (ctx.llm, ctx.vlm) if isinstance(s, str)):
        provider = ignores_timeout(spec, base_url=ctx.base_url)
        if provider:
            warn(
                f"--model-timeout is ignored for {spec}: the {provider} chat model has no timeout setting "
                "(its calls wait as long as the provider's client does)"
            )
    return ctx
