"""A plain (non-editable) install works: the wheel carries prompts/ and sandbox/, and `coco` runs from any folder.

The wheel is built from the checkout without build isolation (no index needed), installed with --no-deps into a
fresh virtualenv whose dependencies come from the test's own environment (a .pth line), and run from a folder
that is not the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support.fixtures_models import ScriptedChatModel
from support.paths import REPO_ROOT
from support.programs import ACCEPT, GOOD_BARS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A virtualenv holding coco-agent installed from a wheel built from this checkout; its bin/ folder."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # the checkout's files (tracked or not ignored), without any stale build/ folder
    listed = (
        subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if (REPO_ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, source / name)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = root.glob("coco_agent-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies, from this environment; not its coco_agent (an editable finder that a .pth line skips)
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return venv / "bin"


def clean_env() -> dict[str, str]:
    """The environment without what would point Python or coco elsewhere (PYTHONPATH, COCO_*, OPENAI_*)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COCO_", "OPENAI_"))}


def run(bin_dir: Path, args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = clean_env()
    return subprocess.run(
        [str(bin_dir / "coco"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        **kwargs,
    )


def test_the_installed_package_is_the_wheels(installed, tmp_path):
    where = subprocess.run(
        [str(installed / "python"), "-c", "import coco_agent.paths as p; print(p.shipped_dir('sandbox'))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.parent)) and "_data" in where.stdout
    assert run(installed, ["--help"], tmp_path).returncode == 0


def test_sandbox_status_from_any_folder(installed, tmp_path):
    """No FileNotFoundError traceback: the image recipe is found in the package, and names the same image."""
    from coco_agent.sandbox.image import image_tag

    done = run(installed, ["sandbox", "status", "--json"], tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    assert json.loads(done.stdout)["image"] == image_tag()


def test_generate_against_the_local_server(installed, tmp_path, openai_server):
    """A whole run from the installed wheel: prompts and the worker bundle come from the package."""
    openai_server.script(GOOD_BARS, ACCEPT)
    args = ["generate", "Bar chart of sales", "-o", str(tmp_path / "run"), "--json", "--sandbox", "process"]
    args += ["--llm", "openai:test-model", "--vlm", "none", "--base-url", openai_server.base_url]
    done = run(installed, args, tmp_path)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    result = json.loads(done.stdout)
    assert result["status"] == "accepted" and (tmp_path / "run" / "final.png").is_file()


def test_missing_prompt_files_are_named_not_blamed_on_the_model(tmp_path, monkeypatch):
    """An install without its prompt folder ends the run with that cause, not "check the model name"."""
    from coco_agent import prompts
    from coco_agent.context import RunContext
    from coco_agent.runner import start_run

    def missing(name: str):
        raise FileNotFoundError(f"cannot find the '{name}' folder")

    monkeypatch.setattr(prompts, "shipped_dir", missing)
    prompts.template.cache_clear()
    try:
        ctx = RunContext(llm=ScriptedChatModel(replies=[GOOD_BARS]), vlm="none", sandbox="process")
        result = start_run("A bar chart", ctx, tmp_path / "run")
    finally:
        prompts.template.cache_clear()
    assert result["status"] == "failed"
    assert "prompt templates cannot be read" in result["error"] and "check the model" not in result["error"]
