"""The run context (LangGraph ``context_schema``): which models, refiner, limits. Nodes never hard-code these."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from coco_agent import formats
from coco_agent.formats import FormatName
from coco_agent.sandbox.base import SandboxLimits

REVIEW_POINTS = ("none", "draft", "refine", "all")  # where a run pauses for a person (--review)
MAX_CANDIDATES = 16  # programs per round at most (--candidates)


@dataclass
class RunContext:
    """Configuration of one run.

    `llm` / `vlm` are ``"provider:model"`` strings (``openai:gpt-4.1-mini``, ``anthropic:...``, ``ollama:...``,
    ``hf:<hub id or dir>``), or already-built LangChain chat models (tests, embedding apps). ``vlm="none"``
    skips the critic: the deterministic checks decide alone. Empty means auto-detect.
    ``coco_agent.environment.context_from_env`` builds one from the environment (COCO_LLM, COCO_VLM,
    OPENAI_BASE_URL, ...) and a front end's settings, with the default critic rule; the CLI, `langgraph dev`
    and ``coco_agent.generate`` all do. Made by hand, a context is taken as it is.

    Refinement: `refine_strength` None lets the prompt kind decide (refiners/policy.py), 0 keeps the draft.
    With `refine_guard`, the refined image is kept only when text accuracy does not drop and the CLIP score
    drops by at most `refine_margin` (cosine; refiners/guardrail.py). `ocr_engine`: auto, rapidocr or
    tesseract; `clip_model`: open_clip ARCH:TAG, hf-hub:org/repo, a local dir, auto or none (scoring/).
    `text_mode`: what becomes of the draft's text (layered: composited over the refined text-free draft;
    protect: kept by inpainting and the guardrail; free: the refiner may redraw it; auto: by prompt kind).
    `repairs`: fix small, certain mistakes in the program before it runs (nodes/repair.py, repairs/).
    `review`: pause the run for a person (LangGraph ``interrupt()``, nodes/review.py) before the chosen draft
    is refined (``draft``), before the refined image counts (``refine``), or at both (``all``).

    Cost and search (coco_agent/ledger/): `budget_usd` / `budget_tokens` / `deadline_s` stop the run cleanly
    (status budget) before a call that would pass them; `prices` is a price file over the shipped table
    (COCO_PRICES). `candidates`: programs asked for per round, rendered in parallel, ranked, the critic
    choosing among the best. `critique`: "single" (one critic) or "split" (a visual critic, then a code critic
    mapping each problem to lines). `temperature`, `max_tokens` and `seed` reach every provider that takes them.
    """

    llm: Any = None
    vlm: Any = None
    base_url: str | None = None
    refiner: str = "none"
    max_rounds: int = 4
    format: FormatName | Literal["auto"] = "auto"  # chosen per prompt (formats/choose.py); a name fixes it
    sandbox: Literal["auto", "docker", "gvisor", "bubblewrap", "process"] = (
        "auto"  # sandbox/backends.py KINDS
    )
    timeout_s: float = 30.0
    memory_mb: int = 1024
    model_timeout_s: float = 180.0
    runs_dir: str = "runs"
    refine_strength: float | None = None
    refine_guard: bool = True
    text_mode: Literal["auto", "layered", "protect", "free"] = "auto"  # refiners/policy.py TEXT_MODES
    repairs: bool = True
    refine_margin: float = 0.02
    ocr_engine: str = "auto"
    clip_model: str = "auto"
    seed: int = 0
    review: Literal["none", "draft", "refine", "all"] = "none"  # REVIEW_POINTS
    budget_usd: float | None = None
    budget_tokens: int | None = None
    deadline_s: float | None = None
    prices: str | None = None
    candidates: int = 1
    critique: Literal["single", "split"] = "single"
    temperature: float | None = None
    max_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def reviews(self, point: str) -> bool:
        """Whether the run pauses for a person at ``point`` ("draft" or "refine")."""
        return self.review == "all" or self.review == point

    def limits(self) -> SandboxLimits:
        return SandboxLimits(timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    def validate(self) -> None:
        """Raise ValueError with a clear message for settings that cannot work."""
        if not 1 <= self.max_rounds <= 50:
            raise ValueError(f"max_rounds must be between 1 and 50, got {self.max_rounds}")
        if self.format != "auto":
            formats.get(self.format)  # ValueError naming the choices
        if not 1 <= self.timeout_s <= 600:
            raise ValueError(f"sandbox timeout must be between 1 and 600 seconds, got {self.timeout_s}")
        if not 64 <= self.memory_mb <= 16384:
            raise ValueError(f"sandbox memory must be between 64 and 16384 MB, got {self.memory_mb}")
        if self.refine_strength is not None and not 0 <= self.refine_strength <= 1:
            raise ValueError(f"refine strength must be between 0 and 1, got {self.refine_strength}")
        if self.review not in REVIEW_POINTS:
            raise ValueError(
                f"unknown review point {self.review!r}; choose one of {', '.join(REVIEW_POINTS)}"
            )
        if not 0 <= self.refine_margin <= 1:
            raise ValueError(f"refine margin (CLIP cosine) must be between 0 and 1, got {self.refine_margin}")
        if self.text_mode not in ("auto", "layered", "protect", "free"):
            raise ValueError(
                f"unknown text mode {self.text_mode!r}; choose one of auto, layered, protect, free"
            )
        self.validate_search()

    def validate_search(self) -> None:
        """The budget, candidate, critique and sampling settings (ValueError; PriceFileError for a bad file)."""
        from coco_agent.ledger.budget import limits_problem
        from coco_agent.ledger.prices import load_prices

        problem = limits_problem(self.budget_usd, self.budget_tokens, self.deadline_s)
        if problem:
            raise ValueError(problem)
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int):
            raise ValueError(f"--candidates must be a whole number, got {self.candidates!r}")
        if not 1 <= self.candidates <= MAX_CANDIDATES:
            raise ValueError(
                f"--candidates must be between 1 and {MAX_CANDIDATES}, got {self.candidates}: each candidate "
                "is a program the model writes and the sandbox renders every round"
            )
        if self.critique not in ("single", "split"):
            raise ValueError(f"--critique must be 'single' or 'split', got {self.critique!r}")
        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise ValueError(f"--temperature must be between 0 and 2, got {self.temperature}")
        if self.max_tokens is not None and not 1 <= self.max_tokens <= 1_000_000:
            raise ValueError(f"--max-tokens must be between 1 and 1,000,000, got {self.max_tokens}")
        load_prices(self.prices)  # PriceFileError naming the file and the fix
