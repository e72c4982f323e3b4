"""Build step: the wheel carries the top-level prompts/ and sandbox/ folders as package data (coco_agent/_data/).

The repository keeps them where the client's layout puts them; an editable install reads them there
(coco_agent/paths.py looks beside the package first). Everything else about the package is in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("prompts", "sandbox")


class BuildWithShippedFolders(build_py):
    """build_py, then prompts/ and sandbox/ copied into the built package as coco_agent/_data/<name>."""

    def run(self) -> None:
        super().run()
        for name in SHIPPED:
            target = Path(self.build_lib) / "coco_agent" / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithShippedFolders})
