"""Debian's headless Chromium for the tests that look at a page: a screenshot, the DOM after scripts ran."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from support.paths import require


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "headless Chromium is missing: apt-get install chromium")
    return path


def headless(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += [f"--user-data-dir={profile}", "--virtual-time-budget=10000", *args, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def image_check(dom: str) -> dict:
    found = re.search(r'<pre id="image-check"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1), "the page's image check did not run"
    return json.loads(found.group(1).replace("&quot;", '"'))
