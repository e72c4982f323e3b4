"""Small drawing programs that tests feed through scripted models."""

GOOD_BARS = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="tab:blue")
ax.set_title("Quarterly Sales 2025")
plt.savefig("output.png")
```"""

GOOD_BARS_V2 = GOOD_BARS.replace("tab:blue", "tab:orange")

CRASH = """```python
import matplotlib.pyplot as plt
values = {"Q1": 100}
raise ValueError("boom-4711: the data table is broken")
```"""

BLANK = """```python
import matplotlib.pyplot as plt
fig = plt.figure(figsize=(6, 4), dpi=100)
plt.savefig("output.png")
```"""

PROSE = "I would draw a nice bar chart with four bars, one per quarter, and a bold title on top."

ACCEPT = '{"match": true, "score": 9, "problems": [], "summary": "all four quarters and the title are right"}'


def reject(*problems: str) -> str:
    import json

    return json.dumps({"match": False, "score": 3, "problems": list(problems), "summary": "mismatch"})


SMALL_BARS = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(1.5, 1.5), dpi=64)
ax.bar(["Q1", "Q2", "Q3", "Q4"], [100, 120, 150, 140], color="tab:blue")
ax.axis("off")  # a 96 px chart has no room for readable labels: the geometry checks would send it back
plt.savefig("output.png")
```"""


def forge_result(header: dict, payload_expr: str = "b''", prelude: str = "") -> str:
    """A program that writes ``header`` plus the bytes ``payload_expr`` evaluates to as its own result frame on
    the worker's result pipe (every write-only FIFO it holds), then exits: what a job that forges its own
    answer does. ``prelude`` is source run first (e.g. the module that builds the payload)."""
    return (
        prelude
        + f"""
import fcntl, json, os, stat, struct
payload = {payload_expr}
head = json.dumps(dict({header!r}, type="result", payload_len=len(payload))).encode()
frame = struct.pack(">I", len(head)) + head + payload
for fd in range(3, 256):
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        continue
    if stat.S_ISFIFO(mode) and fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:
        os.write(fd, frame)
os._exit(0)
"""
    )


STORES_CHART = """```python
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(3, 2), dpi=100)
ax.bar(["North", "South", "East"], [3, 5, 4], color="tab:green")
ax.set_title("Stores 2025")
fig.tight_layout()
plt.savefig("chart.png")
```"""


def code_of(answer: str) -> str:
    """The program inside a fenced answer such as STORES_CHART."""
    return answer.split("\n", 1)[1].rsplit("```", 1)[0]
