"""Prompts files for `coco batch`: the three formats, errors that name the line, ids, streaming."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from support.paths import SHARED

from coco_agent.batch.prompts_file import PromptsFileError, count_prompts, iter_prompts

LONGTEXT = SHARED / "benchmarks" / "longtext_bench" / "text_prompts.jsonl"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_txt_one_prompt_a_line_ids_are_line_numbers(tmp_path):
    path = write(tmp_path, "p.txt", "\ufeffA bar chart\n\n  A pie chart  \n")
    items = list(iter_prompts(path))
    assert [(i.id, i.prompt, i.line, i.index) for i in items] == [
        ("000001", "A bar chart", 1, 0),
        ("000003", "A pie chart", 3, 1),
    ]


def test_jsonl_ids_texts_and_meta(tmp_path):
    lines = [
        {"prompt": "one", "id": "first", "text": "HELLO"},
        {"prompt": "two", "prompt_id": 7, "text": ["A", "B"], "category": "sign"},
        {"prompt": "three"},
    ]
    path = write(tmp_path, "p.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    items = list(iter_prompts(path))
    assert [i.id for i in items] == ["first", "7", "000003"]
    assert items[0].texts == ["HELLO"] and items[1].texts == ["A", "B"]
    assert items[1].meta == {"category": "sign"}


def test_longtext_bench_loads_as_it_is():
    if not LONGTEXT.exists():
        pytest.skip(f"{LONGTEXT} missing")
    items = list(iter_prompts(LONGTEXT))
    assert len(items) == 160 and items[0].id == "0" and items[0].texts
    assert items[0].meta["category"] == "sign"


def test_csv_with_prompt_column(tmp_path):
    text = 'id,prompt,text\na1,"A chart, with a comma","[""X"", ""Y""]"\n,,\na2,"Two\nlines",Z\n'
    items = list(iter_prompts(write(tmp_path, "p.csv", text)))
    assert [(i.id, i.prompt, i.texts) for i in items] == [
        ("a1", "A chart, with a comma", ["X", "Y"]),
        ("a2", "Two\nlines", ["Z"]),
    ]


def test_limit_stops_early(tmp_path):
    path = write(tmp_path, "p.txt", "a\nb\nc\n")
    assert [i.prompt for i in iter_prompts(path, limit=2)] == ["a", "b"]
    assert count_prompts(path, limit=2) == 2


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("p.jsonl", '{"prompt": "ok"}\n{"prompt": "broken"\n', ":2: not valid JSON"),
        ("p.jsonl", '{"prompt": "ok"}\n\n["a list"]\n', ":3: expected a JSON object"),
        ("p.jsonl", '{"prompt": "ok"}\n{"id": "x"}\n', ":2: 'prompt' is missing"),
        ("p.jsonl", '{"prompt": "ok", "text": [1, 2]}\n', ":1: 'text' must be"),
        ("p.jsonl", '{"prompt": "a", "id": "../etc"}\n', ":1: id '../etc' cannot be a folder name"),
        ("p.jsonl", '{"prompt": "a", "id": "a b"}\n', ":1: id 'a b' cannot be a folder name"),
        ("p.jsonl", '{"prompt": "a", "id": "summary.json"}\n', ":1: id 'summary.json' cannot be"),
        ("p.jsonl", '{"prompt": "a", "id": true}\n', ":1: the id must be a string or an integer"),
        ("p.jsonl", '{"prompt": "a", "id": "Chart"}\n{"prompt": "b", "id": "chart"}\n', ":2: duplicate id"),
        ("p.csv", "name,text\nx,y\n", ":1: the CSV header has no 'prompt' column"),
        ("p.csv", 'prompt\n"ok"\n"x" y,z\n', ":3: more fields than the header names"),
        ("p.txt", "", ":1: no prompts (the file is empty)"),
        ("p.txt", "\n  \n\n", ":3: no prompts (3 line(s), none with a prompt)"),
        ("p.jsonl", "\n", ":1: no prompts"),
        ("p.yaml", "prompt: x\n", "use .txt, .jsonl or .csv"),
    ],
)
def test_bad_files_name_the_line(tmp_path, name, text, needle):
    path = write(tmp_path, name, text)
    with pytest.raises(PromptsFileError) as error:
        count_prompts(path)
    assert needle in str(error.value) and str(path) in str(error.value)


def test_duplicate_message_names_both_lines(tmp_path):
    path = write(
        tmp_path, "p.jsonl", '{"prompt": "a", "id": 5}\n{"prompt": "b"}\n{"prompt": "c", "id": "5"}\n'
    )
    with pytest.raises(PromptsFileError, match=r":3: duplicate id '5' \(first used on line 1\)"):
        count_prompts(path)


def test_invalid_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "p.txt", b"fine\n\xff\xfe broken\n")
    with pytest.raises(PromptsFileError, match=r":2: not UTF-8"):
        count_prompts(path)


def test_missing_file(tmp_path):
    with pytest.raises(PromptsFileError, match="no such file"):
        count_prompts(tmp_path / "none.txt")


def test_100k_lines_stream_with_flat_memory(tmp_path):
    """100,000 prompts of ~300 characters (30 MB): the first comes at once, memory stays far below the file."""
    path = tmp_path / "big.jsonl"
    filler = "with a long description of bars, labels and colours " * 5
    with path.open("w", encoding="utf-8") as fh:
        for i in range(100_000):
            fh.write(json.dumps({"id": f"p{i}", "prompt": f"Chart {i} {filler}", "text": ["A"]}) + "\n")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        first = next(iter_prompts(path))
        assert first.id == "p0"
        assert tracemalloc.get_traced_memory()[1] < 1_000_000  # reading one prompt reads one line
        tracemalloc.reset_peak()
        assert count_prompts(path) == 100_000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert size > 25_000_000 and peak < size / 2  # only the 8-byte id digests grow with the file
