"""The library surface: `import coco_agent` is light, its functions are what the CLI uses, and the README's
"Use it as a library" example runs as written (against the local OpenAI-compatible server)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from PIL import Image
from support.fixtures_models import ScriptedChatModel
from support.paths import REPO_ROOT
from support.programs import ACCEPT, GOOD_BARS

import coco_agent

pytestmark = pytest.mark.usefixtures("no_model_env")


def readme_example() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use it as a library", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section holds one example"
    return blocks[0]


def test_import_is_light() -> None:
    code = (
        "import sys, coco_agent, coco_agent.errors\n"
        "heavy = ('langchain', 'langchain_core', 'langgraph', 'torch', 'docker', 'PIL', 'rich', 'matplotlib')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_surface_names_what_a_front_end_needs() -> None:
    from coco_agent.context import RunContext
    from coco_agent.environment import context_from_env
    from coco_agent.errors import ModelChoiceError, SandboxUnavailable

    assert coco_agent.RunContext is RunContext and coco_agent.context_from_env is context_from_env
    assert (
        coco_agent.ModelChoiceError is ModelChoiceError
        and coco_agent.SandboxUnavailable is SandboxUnavailable
    )
    for name in ("generate", "resume", "generate_batch", "render", "score"):
        assert callable(getattr(coco_agent, name)) and getattr(coco_agent, name).__doc__, name
    assert set(coco_agent.__all__) >= {
        "generate",
        "resume",
        "generate_batch",
        "render",
        "score",
        "RunContext",
        "errors",
    }
    with pytest.raises(AttributeError):
        coco_agent.not_a_thing  # noqa: B018


def test_the_readme_example_runs(openai_server, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "OPENAI_BASE_URL", openai_server.base_url
    )  # where "openai:gpt-4.1-mini" is served here
    openai_server.script(GOOD_BARS, ACCEPT)
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "__readme__"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "accepted final.png" and lines[-1] == "ok 80 40", lines
    assert [body["model"] for body in openai_server.chat_requests] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    result = json.loads((tmp_path / "runs/sales/result.json").read_text())
    assert result["models"] == {"coder": "openai:gpt-4.1-mini", "critic": "openai:gpt-4.1-mini"}


def test_generate_takes_a_context_and_settings(tmp_path) -> None:
    ctx = coco_agent.RunContext(llm=ScriptedChatModel([GOOD_BARS]), vlm="none", sandbox="process")
    result = coco_agent.generate("bars", ctx, out=tmp_path / "a", max_rounds=1)
    assert result["status"] == "accepted" and result["max_rounds"] == 1
    assert ctx.max_rounds == 4  # the caller's context is not changed
    with pytest.raises(coco_agent.RunDirError):
        coco_agent.generate("bars", ctx, out=tmp_path / "a")


def test_render_and_score(tmp_path) -> None:
    program = "from PIL import Image\nImage.new('RGB', (40, 30), 'white').save('output.png')\n"
    drawn = coco_agent.render(program, sandbox="process")
    assert drawn.ok and (drawn.width, drawn.height) == (40, 30) and drawn.png.startswith(b"\x89PNG")
    path = tmp_path / "white.png"
    Image.new("RGB", (40, 30), "white").save(path)
    scores = coco_agent.score(path, "a sign", ["HELLO"], clip_model="none")
    assert scores["expected_text"] == ["HELLO"] and "reason" in scores["clip"]


def test_generate_batch(openai_server, tmp_path) -> None:
    import coco_agent.batch.work  # noqa: F401  (importing the subpackage must not hide the function)

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("bars one\nbars two\n")
    openai_server.respond_with(lambda body: GOOD_BARS)
    summary = coco_agent.generate_batch(
        prompts,
        tmp_path / "out",
        llm="openai:test-model",
        vlm="none",
        base_url=openai_server.base_url,
        sandbox="process",
        workers=2,
    )
    assert summary["statuses"].get("accepted") == 2, summary["statuses"]
