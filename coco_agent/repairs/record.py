"""What a repair is (the record every pass returns) and the bounds on the work repairs do."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# 5x the longest ChartMimic program (6.4 KB), 20x the longest LongText-Bench prompt: ~0.3 s of host CPU at most
MAX_REPAIR_CHARS = 32 * 1024
MAX_LOOKUPS = 32  # distinct invalid colours or unknown keywords a pass looks up a close name for


@dataclass(frozen=True)
class Repair:
    """One change: what kind, on which line, the text before and after, and why."""

    kind: str  # indentation | colour | legend_loc | keyword
    line: int
    before: str
    after: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"line {self.line}: {self.kind} {self.before!r} -> {self.after!r}"


@dataclass
class RepairResult:
    """The repaired program (``code`` equals the input when ``repairs`` is empty)."""

    code: str
    repairs: list[Repair] = field(default_factory=list)
    note: str = ""  # why nothing was tried (a program over the size cap)

    @property
    def changed(self) -> bool:
        return bool(self.repairs)


Pass = Callable[[str, ast.Module], tuple[str, list[Repair]]]
