"""How hard to fuzz: quick and reproducible in CI, as deep as asked on demand.

    pytest tests/fuzz                               CI: derandomized, a few hundred cases each
    FUZZ_EXAMPLES=100000 pytest tests/fuzz -x       deep: random seeds, N cases per target
    FUZZ_EXAMPLES=100000 pytest tests/fuzz --hypothesis-seed=7    deep and repeatable

A deep run that finds something prints the falsifying input; add it to
tests/fuzz/corpus/ (see tests/fuzz/test_corpus.py) so it is checked in every CI run.
"""

from __future__ import annotations

import os
from typing import Final

from hypothesis import HealthCheck, settings

DEEP_EXAMPLES: Final = int(os.environ.get("FUZZ_EXAMPLES", "0") or 0)
DEEP: Final = DEEP_EXAMPLES > 0


def budget(ci_examples: int) -> settings:
    """`@budget(n)`: n examples in CI (fixed seed), FUZZ_EXAMPLES in a deep run."""
    if DEEP:
        return settings(max_examples=DEEP_EXAMPLES, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), database=None)
    # derandomize: CI fuzzes the same inputs on every run, so it never fails at random;
    # exploring is what deep runs are for.
    return settings(max_examples=ci_examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)
