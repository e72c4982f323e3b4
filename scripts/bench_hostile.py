"""CPU seconds the host spends on hostile model output: code extraction, repairs, format guessing, highlighting.

The inputs are the tests' (tests/agent/test_hostile_input.py: 200 KB answers of backticks, '<svg', '<?xml'...;
programs at the 32 KiB repair cap; 200 KB of '&' or blank lines for the report). Per input: CPU seconds of this
process (time.process_time) for each stage, and, for each answer, the whole host path before and after the
sandbox: extract the program, repair it, repair it from a hostile 128 KiB error, highlight it for the report.

    .venv/bin/python scripts/bench_hostile.py            # a table
    .venv/bin/python scripts/bench_hostile.py --json     # one line per input
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "agent"))
sys.path.insert(0, str(ROOT))

from test_hostile_input import HOSTILE_ANSWERS, HOSTILE_CODE, HOSTILE_PROGRAMS, WARM  # noqa: E402

from coco_agent.codeblocks import extract_program  # noqa: E402
from coco_agent.formats import guess as guess_format  # noqa: E402
from coco_agent.repairs import repair_code, repair_from_error  # noqa: E402
from coco_agent.report.page import code_html  # noqa: E402

ERROR = 'File "<' * (128 * 1024 // 7) + "\nTypeError: got an unexpected keyword argument 'colr'"
FORMATS = ("matplotlib", "svg")
# the programs at the repair cap, and one at the answer cap (1 MiB: not repaired, not highlighted)
PROGRAMS = {**HOSTILE_PROGRAMS, "at_the_answer_cap": "x = 1\n" * (1024 * 1024 // 6 - 4)}


def cpu(fn, *args) -> tuple[float, object]:
    start = time.process_time()
    result = fn(*args)
    return time.process_time() - start, result


def answer_path(answer: str, fmt: str) -> dict[str, float]:
    """What one answer costs on the host, stage by stage."""
    seconds: dict[str, float] = {}
    seconds["extract"], found = cpu(extract_program, answer, fmt)
    code = found.code
    seconds["repair"], _ = cpu(repair_code, code, fmt)
    seconds["repair_from_error"], _ = cpu(repair_from_error, code, ERROR, fmt)
    seconds["highlight"], _ = cpu(code_html, code, "code.svg" if fmt == "svg" else "code.py")
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON line per input")
    args = parser.parse_args()
    repair_code(WARM)
    repair_from_error(WARM, ERROR)
    code_html(WARM, "code.py")
    extract_program("```python\nx = 1\n```", "svg")
    rows: list[dict] = []
    answers = [(f"answer:{name}", answer, fmt) for name, answer in HOSTILE_ANSWERS.items() for fmt in FORMATS]
    answers += [
        (f"program:{name}", f"```python\n{code}```\n", "matplotlib") for name, code in PROGRAMS.items()
    ]
    for label, answer, fmt in answers:
        rows.append({"input": label, "format": fmt, "chars": len(answer), **answer_path(answer, fmt)})
    for name, (file, code) in HOSTILE_CODE.items():
        seconds, _ = cpu(code_html, code, file)
        rows.append({"input": f"report:{name}", "chars": len(code), "highlight": seconds, "total": seconds})
    blank = "\n" * 200_000 + "from PIL import Image\n"
    seconds, _ = cpu(guess_format, blank)
    rows.append(
        {"input": "guess_format:blank_lines", "chars": len(blank), "guess": seconds, "total": seconds}
    )
    if args.json:
        for row in rows:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
        return
    print(f"{'input':52} {'chars':>8} {'total s':>8}  stages")
    for row in rows:
        label = row["input"] + (f" ({row['format']})" if "format" in row else "")
        stages = ", ".join(f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float) and k != "total")
        print(f"{label:52} {row['chars']:>8} {row['total']:>8.3f}  {stages}")
    print(f"worst: {max(row['total'] for row in rows):.3f} s of CPU")


if __name__ == "__main__":
    main()
