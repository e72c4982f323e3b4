"""Sampling settings (temperature, max tokens, seed) in the form each provider's chat model takes them.

``Sampling.of(ctx)`` reads them from the run context; ``construction_kwargs`` maps them onto the fields the chat
model class has (ChatOpenAI ``max_tokens`` and ``seed``, ChatAnthropic ``max_tokens``, ChatOllama ``num_predict``
and ``seed``, the hf: model's ``max_new_tokens`` and ``seed``, ...), and ``unsupported`` names what a class has
no field for (recorded in result.json, never silently dropped). ``varied`` gives the k-th candidate of a round
its own temperature and seed, on a copy of the model that shares its client (or loaded weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# the field names chat model classes give each setting, in the order tried
FIELDS: dict[str, tuple[str, ...]] = {
    "temperature": ("temperature",),
    "max_tokens": (
        "max_tokens",
        "max_completion_tokens",
        "max_new_tokens",
        "num_predict",
        "max_output_tokens",
    ),
    "seed": ("seed", "random_seed"),
}
CANDIDATE_TEMPERATURE = 0.8  # candidates after the first sample at least this hot (greedy ones would repeat)


@dataclass(frozen=True)
class Sampling:
    """What the run asks of every model: None leaves the provider's default."""

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    @classmethod
    def of(cls, ctx: Any) -> Sampling:
        return cls(
            getattr(ctx, "temperature", None), getattr(ctx, "max_tokens", None), getattr(ctx, "seed", None)
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def field_names(cls: type) -> set[str]:
    """A pydantic chat model class's fields and their aliases."""
    names: set[str] = set()
    for name, info in (getattr(cls, "model_fields", None) or {}).items():
        names.add(name)
        alias = getattr(info, "alias", None)
        if alias:
            names.add(alias)
    return names


def construction_kwargs(cls: type | None, sampling: Sampling | None) -> dict[str, Any]:
    """The keyword arguments that give a model of class ``cls`` these settings (those it has fields for)."""
    if cls is None or sampling is None:
        return {}
    have = field_names(cls)
    kwargs: dict[str, Any] = {}
    for setting, value in sampling.as_dict().items():
        name = next((n for n in FIELDS[setting] if n in have), None)
        if name is not None:
            kwargs[name] = value
    return kwargs


def unsupported(cls: type | None, sampling: Sampling | None) -> list[str]:
    """The settings a model of class ``cls`` has no field for (they cannot reach it)."""
    if cls is None or sampling is None:
        return []
    have = field_names(cls)
    return [s for s in sampling.as_dict() if not any(n in have for n in FIELDS[s])]


def candidate_samplings(sampling: Sampling, n: int) -> list[dict[str, Any]]:
    """The temperature and seed of each of ``n`` candidates: the first as the run asks, the others hotter
    (at least CANDIDATE_TEMPERATURE) with seeds seed+1, seed+2, ..."""
    base_t = sampling.temperature
    seed = sampling.seed if sampling.seed is not None else 0
    out: list[dict[str, Any]] = [{"temperature": base_t, "seed": sampling.seed}]
    for k in range(1, n):
        hot = max(base_t or 0.0, CANDIDATE_TEMPERATURE)
        out.append({"temperature": round(hot + 0.05 * (k - 1), 3), "seed": seed + k})
    return [{key: v for key, v in s.items() if v is not None} for s in out]


def varied(model: Any, settings: dict[str, Any]) -> Any:
    """A copy of ``model`` with these temperature / seed settings (fields it lacks are left out; a model with
    neither is returned as it is). The copy shares the original's client and loaded weights."""
    have = field_names(type(model))
    update: dict[str, Any] = {}
    for setting, value in settings.items():
        name = next((n for n in FIELDS.get(setting, ()) if n in have), None)
        if name is not None and name in (getattr(type(model), "model_fields", None) or {}):
            update[name] = value
    if not update or not hasattr(model, "model_copy"):
        return model
    return model.model_copy(update=update)
