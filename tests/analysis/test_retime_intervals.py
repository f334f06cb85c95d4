"""The re-timing's figure and interval from one or several timing sessions (hand-built rounds)."""

from __future__ import annotations

import numpy as np
import pytest

from raykd.analysis.retime import bootstrap_ratio, sessions_ratio


def test_one_session_is_the_ratio_of_medians_and_the_rounds_bootstrap():
    ref, mod = [10.0, 11.0, 9.0, 10.5, 10.2], [5.0, 5.5, 4.8, 5.1, 5.2]
    speedup, low, high = sessions_ratio([(ref, mod)])
    assert speedup == pytest.approx(np.median(ref) / np.median(mod))
    assert (low, high) == bootstrap_ratio(ref, mod)


def test_several_sessions_average_their_ratios_and_the_interval_spans_the_sessions():
    # every round of a session agrees (no spread within), the sessions disagree: 2.0 and 2.2.
    # A one-process interval would be [2.0, 2.0]; resampling sessions gives 2.0 .. 2.2
    a, b = ([10.0] * 6, [5.0] * 6), ([11.0] * 6, [5.0] * 6)
    speedup, low, high = sessions_ratio([a, b])
    assert speedup == pytest.approx(2.1)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.2)
    assert bootstrap_ratio(*a) == (2.0, 2.0)
    # identical sessions: the figure of one of them, and no spread
    same = sessions_ratio([a, a, a])
    assert same == (pytest.approx(2.0), pytest.approx(2.0), pytest.approx(2.0))
    # the interval is seeded: the same input gives the same interval
    noisy = [([10 + 0.1 * i for i in range(8)], [5 + 0.07 * i for i in range(8)]), ([11.0, 10.8, 11.3, 10.9], [5.1, 5.0, 5.2, 5.05])]
    assert sessions_ratio(noisy) == sessions_ratio(noisy)
    s, lo, hi = sessions_ratio(noisy)
    assert lo <= s <= hi
