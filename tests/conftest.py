"""Shared pytest set-up: the fixture modules of tests/support/ are registered here.

Tests mirror the package (tests/<area>/ for coco_agent/<area>/; package-wide checks at the top); what they share
lives in tests/support/ (imported as `support.<module>`: pyproject puts tests/ on the path).
"""

from __future__ import annotations

pytest_plugins = [
    "support.fixtures_env",
    "support.fixtures_models",
    "support.fixtures_postgres",
    "support.fixtures_refiners",
    "support.fixtures_sandbox",
    "support.fixtures_scoring",
]


def pytest_collection_modifyitems(config, items) -> None:
    """Known gVisor gaps (tests/support/gvisor_gaps.py) run as strict expected failures."""
    import pytest
    from support.gvisor_gaps import FLAKY, GAPS

    for item in items:
        why = GAPS.get(item.nodeid)
        if why:
            strict = item.nodeid not in FLAKY
            item.add_marker(pytest.mark.xfail(reason=f"gVisor gap: {why}", strict=strict))
