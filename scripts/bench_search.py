"""Measured gain of ``--candidates N``: a simulation of the search, not a measure of any real model's quality.

What it measures. The real agent (``coco_agent.generate``: the real langchain-openai client, the sandbox, the
repair step, the draft, facts and geometry checks, the ranking, the montage, the budget gate) runs a few hundred
simulated chart prompts against the local scripted OpenAI-compatible server (tests/support/fixtures_models.py),
once for each N in ``--candidates`` at the same token budget (``--budget-tokens``, default 3000: about three
single-draft rounds, two rounds of eight candidates) and round limit R (``--rounds``), and prints one row per N,
side by side: runs accepted within R rounds, mean rounds, model calls per run (code writer requests, critic
requests: result.json ``usage``), programs written per run, tokens per run (the server's counts as result.json
``usage`` adds them up), budget stops (status ``budget``), wall seconds per run, and every run's status
(``failed``: no round rendered a draft at all). Nothing leaves 127.0.0.1.

The simulated code writer. Each prompt is a bar chart with a quoted title, labelled values and a named bar
colour ("A bar chart titled 'Harbour Freight', bars in tab:green: North 12, South 30 and East 18"), drawn from a
seeded generator. Every program the writer is asked for (prompt i, round r, candidate k of the request) is right
with probability ``--p``, decided by ``random.Random(f"{seed}:{i}:{r}:{k}")``: the same prompt, round and
candidate number get the same program whatever N is, so the rows differ only in how many draws the search makes
and what it does with them. The writer ignores feedback (every draw is independent: a model that does not learn
from the critic); r is read from the request ("Your previous program (attempt r-1)"), k is the order of the
answers to one request (a request with ``n`` is answered by n successive responder calls). A wrong program makes
one of four mistakes, equally likely, each of which something in the agent can see:

- ``height``: one bar 3-9 off (the facts check: "bar 'South' is 27; the prompt says 30");
- ``crash``: a KeyError at run time (execution; the repair step cannot fix it);
- ``title``: the title left out or two letters swapped (the facts check of quoted strings and the title);
- ``colour``: the bars in another tab: colour (only the critic can see it).

The simulated critic judges from what it is sent, the image: it never sees a program in candidate mode (the
montage request carries none) and ignores the program in single-draft mode. It decodes the PNG, cuts a montage
into its panels (the layout of coco_agent/candidates/montage.py: equal cells, since every program of one prompt
draws the same figure size; the panel count is the labels the request names), takes each panel's dominant
saturated colour (nearest of the tab: palette) and compares it with the colour the request names: it accepts the
first panel that is right (``choice``), else answers ``match: false`` with the colour it saw. It is a perfect
judge of colour and checks nothing else; everything else must be caught before it, by the agent's own checks.
``wrong accepted`` counts accepted runs whose final program is not the right one (0 unless a check lets a
mistake through).

``--ocr off`` runs the candidates without the OCR tie-break (as on a machine with no OCR engine). In this
simulation it can only reorder candidates that draw the same black title (the right program and one with the
wrong colour); on a CPU it is most of a candidate's cost (rapidocr, about 1.2 s a draft here), so the larger runs
leave it off.

Run it (the process sandbox by default; ``--sandbox docker`` for the hardened one):

    .venv/bin/python scripts/bench_search.py                         # 200 prompts, p=0.3, R=4, N=1,2,4,8
    .venv/bin/python scripts/bench_search.py --prompts 40 --ocr off
    .venv/bin/python scripts/bench_search.py --prompts 6 --candidates 1,2 --p 0.5 --rounds 2 --json

Timings are of this machine with its other load; the token counts are the fake server's (words and
punctuation, 85 per image), so they compare N with N, not with any provider's bill.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import coco_agent  # noqa: E402

# matplotlib's tab: colours (matplotlib.colors.TABLEAU_COLORS) without tab:gray, which has no saturation
PALETTE: dict[str, tuple[int, int, int]] = {
    "tab:blue": (31, 119, 180),
    "tab:orange": (255, 127, 14),
    "tab:green": (44, 160, 44),
    "tab:red": (214, 39, 40),
    "tab:purple": (148, 103, 189),
    "tab:brown": (140, 86, 75),
    "tab:pink": (227, 119, 194),
    "tab:olive": (188, 189, 34),
    "tab:cyan": (23, 190, 207),
}
MISTAKES = ("height", "crash", "title", "colour")
STATUSES = ("accepted", "max_rounds", "budget", "failed", "paused", "error")
LLM = "openai:test-model"
OCR_OFF = "none"  # an engine name load_ocr does not know: OcrUnavailable, the candidate's ocr "unavailable"

TITLE_WORDS = (
    ["Harbour", "Orchard", "Quarry", "Canal", "Meadow", "Summit", "Granite", "Willow", "Beacon", "Coastal"]
    + [
        "Lantern",
        "Copper",
        "Silver",
        "Maple",
        "Riverside",
        "Highland",
        "Prairie",
        "Island",
        "Valley",
        "Forest",
    ],
    ["Freight", "Yield", "Output", "Visitors", "Orders", "Rainfall", "Tickets", "Deliveries", "Signups"]
    + ["Repairs", "Shipments", "Harvest", "Bookings", "Downloads", "Returns"],
)
LABEL_THEMES = (
    ["North", "South", "East", "West", "Central", "Coast"],
    ["Lisbon", "Oslo", "Quito", "Dakar", "Hanoi", "Perth"],
    ["Apples", "Pears", "Plums", "Figs", "Cherries", "Lemons"],
    ["Falcons", "Otters", "Badgers", "Herons", "Wolves", "Lynxes"],
    ["Bronze", "Silver", "Gold", "Platinum", "Diamond", "Basic"],
)


@dataclass(frozen=True)
class Spec:
    """One simulated prompt and what it states."""

    index: int
    title: str
    labels: tuple[str, ...]
    values: tuple[int, ...]
    colour: str

    @property
    def prompt(self) -> str:
        pairs = [f"{label} {value}" for label, value in zip(self.labels, self.values, strict=True)]
        listed = ", ".join(pairs[:-1]) + " and " + pairs[-1]
        return f"A bar chart titled '{self.title}', bars in {self.colour}: {listed}"


def make_specs(count: int, seed: int) -> list[Spec]:
    """``count`` distinct prompts from a seeded generator, each checked to read as intended by the facts
    check's own prompt reader (title, labels, values), so a right program raises no false alarm."""
    from coco_agent.facts.claims import read_claims

    rng = random.Random(f"prompts:{seed}")
    specs: list[Spec] = []
    seen: set[str] = set()
    while len(specs) < count:
        title = f"{rng.choice(TITLE_WORDS[0])} {rng.choice(TITLE_WORDS[1])}"
        theme = rng.choice(LABEL_THEMES)
        labels = tuple(rng.sample(theme, rng.randint(3, 6)))
        values = tuple(rng.randint(5, 95) for _ in labels)
        spec = Spec(len(specs), title, labels, values, rng.choice(list(PALETTE)))
        if spec.prompt in seen:
            continue
        claims = read_claims(spec.prompt)
        series = claims.series[0] if len(claims.series) == 1 else None
        if claims.title != title or not series or series.labels != list(labels):
            raise AssertionError(f"the facts check reads the prompt otherwise: {spec.prompt!r}: {claims}")
        if series.values != [float(v) for v in values]:
            raise AssertionError(f"the facts check reads other values: {spec.prompt!r}: {claims}")
        seen.add(spec.prompt)
        specs.append(spec)
    return specs


# ---------------------------------------------------------------------------------------------------------
# The simulated code writer
# ---------------------------------------------------------------------------------------------------------


def program(
    spec: Spec,
    *,
    values: tuple[int, ...] | None = None,
    title: str | None = "",
    colour: str | None = None,
    crash: bool = False,
) -> str:
    """A matplotlib program for ``spec`` (the right one with no arguments); ``title=None`` leaves it out."""
    values = spec.values if values is None else values
    title = spec.title if title == "" else title
    lines = [
        "import matplotlib.pyplot as plt",
        "",
        f"labels = {list(spec.labels)!r}",
        f"values = {list(values)!r}",
        "fig, ax = plt.subplots(figsize=(6, 4), dpi=100)",
    ]
    bars = "values"
    if crash:  # a lookup table built one label short: KeyError at run time
        lines.append("heights = dict(zip(labels[:-1], values))")
        bars = "[heights[label] for label in labels]"
    lines.append(f'ax.bar(labels, {bars}, color="{colour or spec.colour}")')
    if title is not None:
        lines.append(f"ax.set_title({title!r})")
    lines.append('plt.savefig("output.png")')
    return "\n".join(lines) + "\n"


def swap_letters(title: str, rng: random.Random) -> str:
    """``title`` with two adjacent, different letters swapped (a misspelling the facts check reads)."""
    spots = [i for i in range(len(title) - 1) if title[i].isalpha() and title[i + 1].isalpha()]
    spots = [i for i in spots if title[i] != title[i + 1]]
    i = rng.choice(spots)
    return title[:i] + title[i + 1] + title[i] + title[i + 2 :]


def outcome(seed: int, spec: Spec, rnd: int, cand: int, p: float) -> tuple[str, str]:
    """The kind ("right" or a mistake) and the program of candidate ``cand`` of round ``rnd`` for ``spec``."""
    rng = random.Random(f"{seed}:{spec.index}:{rnd}:{cand}")
    if rng.random() < p:
        return "right", program(spec)
    kind = rng.choice(MISTAKES)
    if kind == "height":
        values = list(spec.values)
        i = rng.randrange(len(values))
        delta = rng.randint(3, 9)
        values[i] = values[i] - delta if values[i] - delta > 0 and rng.random() < 0.5 else values[i] + delta
        return kind, program(spec, values=tuple(values))
    if kind == "crash":
        return kind, program(spec, crash=True)
    if kind == "title":
        return kind, program(spec, title=None if rng.random() < 0.5 else swap_letters(spec.title, rng))
    return kind, program(spec, colour=rng.choice([c for c in PALETTE if c != spec.colour]))


# ---------------------------------------------------------------------------------------------------------
# The simulated critic: judges the pixels
# ---------------------------------------------------------------------------------------------------------


def dominant_colour(image: Any) -> str | None:
    """The tab: colour most of the image's saturated pixels are nearest to (None: hardly any colour)."""
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.int32).reshape(-1, 3)
    saturated = pixels[(pixels.max(axis=1) - pixels.min(axis=1)) > 60][::3]
    if len(saturated) < 0.001 * len(pixels):
        return None
    palette = np.array(list(PALETTE.values()), dtype=np.int32)
    nearest = ((saturated[:, None, :] - palette[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    return list(PALETTE)[int(np.bincount(nearest, minlength=len(palette)).argmax())]


def panels(image: Any, count: int) -> list[Any]:
    """The drafts of a montage of ``count`` equal cells (coco_agent/candidates/montage.py), left to right."""
    from coco_agent.candidates.montage import BAND, GAP

    if count <= 1:
        return [image]
    width = (image.width - GAP * (count + 1)) // count
    return [
        image.crop((GAP + i * (width + GAP), BAND, GAP + i * (width + GAP) + width, image.height - GAP))
        for i in range(count)
    ]


# ---------------------------------------------------------------------------------------------------------
# The responder: one callable answers every chat request of the server
# ---------------------------------------------------------------------------------------------------------


def request_text(body: dict[str, Any]) -> str:
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text"]
    return "\n".join(parts)


def request_images(body: dict[str, Any]) -> list[Any]:
    from PIL import Image

    images = []
    for message in body.get("messages") or []:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = part["image_url"]["url"]
                images.append(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))
    return images


def is_critic(body: dict[str, Any]) -> bool:
    """Critic requests carry an image; the code writer's carry text only."""
    return any(isinstance(m.get("content"), list) for m in body.get("messages") or [])


class Simulator:
    """The server's responder: a code writer right with probability ``p`` per candidate, a colour critic."""

    def __init__(self, specs: list[Spec], p: float, seed: int) -> None:
        self.by_prompt = {spec.prompt: spec for spec in specs}
        self.p = p
        self.seed = seed
        self._lock = threading.Lock()
        self._answered: dict[int, list[Any]] = {}  # id(request body) -> [body, answers given so far]
        self.kinds: Counter[str] = Counter()

    def __call__(self, body: dict[str, Any]) -> Any:
        text = request_text(body)
        found = re.search(r"Request:\n(.+)", text)
        spec = self.by_prompt.get(found.group(1).strip()) if found else None
        if spec is None:
            return 500, {"error": {"message": "bench_search: a request for no known prompt"}}
        return self.critic(body, spec, text) if is_critic(body) else self.writer(body, spec, text)

    def writer(self, body: dict[str, Any], spec: Spec, text: str) -> str:
        earlier = re.search(r"Your previous program \(attempt (\d+)\)", text)
        rnd = int(earlier.group(1)) + 1 if earlier else 1
        with self._lock:  # the server calls the responder n times in a row for one request with n
            entry = self._answered.setdefault(id(body), [body, 0])
            entry[1] += 1
            cand = entry[1]
            if cand >= int(body.get("n") or 1):
                del self._answered[id(body)]
        kind, code = outcome(self.seed, spec, rnd, cand, self.p)
        with self._lock:
            self.kinds[kind] += 1
        return f"```python\n{code}```"

    def critic(self, body: dict[str, Any], spec: Spec, text: str) -> str:
        named = re.search(r"\(one of ([A-P](?:, [A-P])*)\)", text)  # critic_choose.md names the labels
        labels = named.group(1).split(", ") if named else []
        images = request_images(body)
        seen = [dominant_colour(panel) for panel in panels(images[0], len(labels))] if images else [None]
        right = [i for i, colour in enumerate(seen) if colour == spec.colour]
        verdict: dict[str, Any]
        if right:
            verdict = {
                "match": True,
                "score": 9,
                "problems": [],
                "summary": "title, bars and colour are right",
            }
        else:
            shown = seen[0] or "no colour"
            problem = f"the bars are {shown}; the request asks for {spec.colour}"
            verdict = {"match": False, "score": 4, "problems": [problem], "summary": "wrong bar colour"}
        verdict["strategy"] = "patch"
        if labels:
            verdict["choice"] = labels[right[0]] if right else labels[0]
        return json.dumps(verdict)


# ---------------------------------------------------------------------------------------------------------
# Runs and the table
# ---------------------------------------------------------------------------------------------------------


def one_run(spec: Spec, n: int, args: argparse.Namespace, base_url: str, out: Path) -> dict[str, Any]:
    """One real agent run; what the table needs of it."""
    run_dir = out / f"n{n}" / f"p{spec.index:04d}"
    started = time.monotonic()
    try:
        result = coco_agent.generate(
            spec.prompt,
            out=run_dir,
            force=True,
            base_url=base_url,
            llm=LLM,
            vlm=LLM,
            refiner="none",
            format="matplotlib",  # what the classifier of --format auto picks for these prompts, fixed here
            sandbox=args.sandbox,
            candidates=n,
            max_rounds=args.rounds,
            budget_tokens=args.budget_tokens,
            ocr_engine=OCR_OFF if args.ocr == "off" else args.ocr,
        )
    except Exception as exc:  # counted in the table, never the end of the benchmark
        return {"prompt": spec.index, "status": "error", "error": f"{type(exc).__name__}: {exc}"[:500]}
    wall = time.monotonic() - started
    usage = result.get("usage") or {}
    roles = usage.get("by_role") or {}
    final = next((a for a in result.get("attempts") or [] if a.get("round") == result.get("best_round")), {})
    code_path = run_dir / final["code"] if final.get("code") else None
    code = code_path.read_text(encoding="utf-8") if code_path and code_path.is_file() else None
    return {
        "prompt": spec.index,
        "status": result.get("status"),
        "rounds": result.get("rounds") or 0,
        "writer_calls": (roles.get("coder") or {}).get("calls", 0),
        "critic_calls": (roles.get("critic") or {}).get("calls", 0),
        "calls": usage.get("calls", 0),
        "tokens": usage.get("total_tokens") or 0,
        "programs": sum(len(a.get("candidates") or [None]) for a in result.get("attempts") or []),
        "final_right": code is not None and code.strip() == program(spec).strip(),
        "wall_s": round(wall, 3),
        "error": result.get("error") or "",
    }


def summarize(n: int, runs: list[dict[str, Any]], requests: dict[str, int], elapsed: float) -> dict[str, Any]:
    ok = [r for r in runs if r["status"] != "error"]
    accepted = [r for r in ok if r["status"] == "accepted"]

    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in ok) if ok else 0.0

    return {
        "candidates": n,
        "prompts": len(runs),
        "accepted": len(accepted),
        "accepted_pct": 100 * len(accepted) / len(runs) if runs else 0.0,
        "accepted_wrong": sum(1 for r in accepted if not r["final_right"]),
        "mean_rounds": mean("rounds"),
        "writer_calls_per_run": mean("writer_calls"),
        "critic_calls_per_run": mean("critic_calls"),
        "programs_per_run": mean("programs"),
        "tokens_per_run": mean("tokens"),
        "budget_stops": sum(1 for r in runs if r["status"] == "budget"),
        "statuses": dict(Counter(r["status"] for r in runs)),
        "wall_s_per_run": mean("wall_s"),
        "elapsed_s": round(elapsed, 1),
        "server_requests": requests,
        "runs": sorted(runs, key=lambda r: r["prompt"]),
    }


def server_counts(server: Any) -> dict[str, int]:
    bodies = server.chat_requests
    critic = sum(1 for b in bodies if is_critic(b))
    return {"writer": len(bodies) - critic, "critic": critic}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every N of ``--candidates`` over the same prompts; the table's rows (and each run's record)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from support.fixtures_models import serve_fake_openai

    counts = [int(c) for c in str(args.candidates).split(",") if c.strip()]
    specs = make_specs(args.prompts, args.seed)
    simulator = Simulator(specs, args.p, args.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp, serve_fake_openai() as server:
        server.respond_with(simulator)
        out = Path(args.out) if args.out else Path(tmp)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
            for n in counts:
                task = progress.add_task(f"N={n}", total=len(specs))
                before = server_counts(server)
                started = time.monotonic()
                runs = []
                with ThreadPoolExecutor(max_workers=args.workers) as pool:
                    futures = [pool.submit(one_run, spec, n, args, server.base_url, out) for spec in specs]
                    for future in as_completed(futures):
                        runs.append(future.result())
                        progress.advance(task)
                after = server_counts(server)
                requests = {k: after[k] - before[k] for k in after}
                rows.append(summarize(n, runs, requests, time.monotonic() - started))
    settings = {
        "prompts": args.prompts,
        "p": args.p,
        "rounds": args.rounds,
        "budget_tokens": args.budget_tokens,
        "candidates": counts,
        "seed": args.seed,
        "sandbox": args.sandbox,
        "workers": args.workers,
        "ocr": args.ocr,
    }
    return {"settings": settings, "rows": rows, "programs_written": dict(simulator.kinds)}


HEADER = (
    ("N", "{candidates}"),
    ("prompts", "{prompts}"),
    ("accepted <= R", "{accepted} ({accepted_pct:.0f}%)"),
    ("wrong acc.", "{accepted_wrong}"),
    ("mean rounds", "{mean_rounds:.2f}"),
    ("writer req/run", "{writer_calls_per_run:.2f}"),
    ("critic req/run", "{critic_calls_per_run:.2f}"),
    ("programs/run", "{programs_per_run:.1f}"),
    ("tokens/run", "{tokens_per_run:,.0f}"),
    ("budget stops", "{budget_stops}"),
    ("wall s/run", "{wall_s_per_run:.2f}"),
)


def table(report: dict[str, Any]) -> str:
    """The rows as a plain text table (also valid Markdown)."""
    cells = [[name for name, _ in HEADER]]
    cells += [[fmt.format(**row) for _, fmt in HEADER] for row in report["rows"]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    s = report["settings"]
    head = (
        f"{s['prompts']} simulated prompts, p={s['p']:g} per candidate, R={s['rounds']} rounds, "
        f"budget {s['budget_tokens']:,} tokens per run, seed {s['seed']}, sandbox {s['sandbox']}, "
        f"{s['workers']} runs at once, OCR tie-break {s['ocr']}"
    )
    others = [
        f"N={row['candidates']}: " + ", ".join(f"{k} {v}" for k, v in sorted(row["statuses"].items()))
        for row in report["rows"]
    ]
    return "\n".join([head, "", *lines, "", "statuses: " + "; ".join(others)])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=200, help="simulated prompts (default 200)")
    parser.add_argument("--p", type=float, default=0.3, help="chance a candidate is right (default 0.3)")
    parser.add_argument("--rounds", "-R", type=int, default=4, help="max rounds per run (default 4)")
    parser.add_argument(
        "--budget-tokens",
        type=int,
        default=3000,
        help="token budget of every run (default 3000: about three single-draft rounds, two rounds of 8)",
    )
    parser.add_argument(
        "--candidates", default="1,2,4,8", help="values of N, comma-separated (default 1,2,4,8)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the prompts and the writer (default 0)")
    parser.add_argument("--sandbox", default="process", help="sandbox (default process)")
    parser.add_argument("--workers", type=int, default=2, help="runs in flight at once (default 2)")
    parser.add_argument(
        "--ocr",
        default="auto",
        choices=["auto", "rapidocr", "tesseract", "off"],
        help="the candidates' OCR tie-break (RunContext.ocr_engine; default auto, the agent's default; off: "
        "no engine, as on a machine without one, which saves its time per candidate)",
    )
    parser.add_argument("--out", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, not the table")
    args = parser.parse_args(argv)
    if args.prompts < 1 or not 0.0 <= args.p <= 1.0 or args.rounds < 1 or args.workers < 1:
        parser.error("--prompts, --rounds and --workers must be at least 1, --p between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = bench(args)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(table(report))
        print("\nA simulation of the search (a scripted writer and critic), not a measure of any real model.")
    return 1 if any(row["statuses"].get("error") for row in report["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
