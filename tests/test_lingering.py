"""The suite's lingering check itself: a test that leaves a task or a timer behind fails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()


@pytest.mark.parametrize(("body", "complaint"), [
    ("asyncio.get_running_loop().call_later(100, print, 'late')", "timer(s) scheduled"),
    ("asyncio.get_running_loop().create_task(asyncio.sleep(100))", "task(s) running"),
])
def test_work_left_behind_fails_the_test(pytester: pytest.Pytester, body: str,
                                         complaint: str) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(f"import asyncio\n\nasync def test_it() -> None:\n    {body}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"*{complaint}*"])
