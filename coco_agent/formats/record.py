"""The record that describes one draft format: everything the host knows about it, in one frozen place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class DraftFormat:
    """One draft format (the worker renders it; a renderer module of the same name: sandbox/worker/.../renderers).

    name         what --format, run.json and the worker call it
    summary      one line for --help and the README
    code_file    the attempt's program file (attempts/NN/<code_file>)
    suffix       the file suffix that marks such a program (coco render, bench corpora)
    fence        the fence language the prompts ask for
    fences       fence languages an answer may use for it ("" : an untagged fence)
    lexer        the pygments lexer alias the report highlights it with
    python       whether the Python repairs apply (repairs/)
    sniff        (code, filename) -> True when the text is evidently this format (`coco render --format auto`)
    unfenced     (answer) -> (program, why): a program in an answer without fences ("" and why when none)
    service      the warm renderer its worker runs ("" for none): such workers serve this format only
    pids         the fewest processes/threads its worker needs (headless Chromium's threads count), 0: any
    cpus         the fewest CPUs its worker's container gets (a multi-process renderer), 0: the run's own
    text_layers  whether its renderer can draw a picture without its text, layout unchanged (layered text)
    """

    name: str
    summary: str
    code_file: str
    suffix: str
    fence: str
    fences: tuple[str, ...]
    lexer: str
    python: bool
    sniff: Callable[[str, str], bool]
    unfenced: Callable[[str], tuple[str, str]]
    service: str = ""
    pids: int = 0
    cpus: float = 0.0
    text_layers: bool = False

    @property
    def prompt(self) -> str:
        """The prompt template with this format's rules for the code writer (prompts/format_<name>.md)."""
        return f"format_{self.name}"
