"""Fixtures shared by the tests of ``gputape.cuda`` (the fused route and the kernels)."""

from __future__ import annotations

import pytest

from gputape.cuda import fused


@pytest.fixture(name="pattern_forwards")
def pattern_forwards_fixture(device) -> list:
    """The name of each pattern forward run (reduce_sum of a pending result, read straight from
    its inputs) for the duration of the test, on every namespace routed at its start."""
    calls: list = []
    real = dict(fused.PATTERN_SUMS)

    def counting(name, pattern):
        def spy(*args, **kwargs):
            calls.append(name)
            return pattern.forward(*args, **kwargs)

        return fused.PatternSum(spy, pattern.one_pass, pattern.fits)

    spies = {key: counting(key[0], pattern) for key, pattern in real.items()}
    fused.PATTERN_SUMS.update(spies)
    yield calls
    for key, spy in spies.items():
        if fused.PATTERN_SUMS.get(key) is spy:  # not dropped by the route's end meanwhile
            fused.PATTERN_SUMS[key] = real[key]
