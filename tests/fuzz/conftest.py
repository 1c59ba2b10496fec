"""A deep fuzzing run (FUZZ_EXAMPLES, tests/fuzz/budget.py) takes as long as it takes:
the suite-wide per-test timeout does not apply to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.budget import DEEP


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not DEEP:
        return
    here = Path(__file__).parent
    for item in items:  # this hook sees the whole session's items: only ours
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.timeout(0))
