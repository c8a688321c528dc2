"""The status's latency percentiles in plain Python (live/pipeline.py: a cluster's camera worker answers the
driver's poll 4 times a second) give numpy.percentile's default (linear) values."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from transpose_live.live.pipeline import linear_percentiles


@pytest.mark.parametrize("count", [1, 2, 3, 7, 20, 299, 300])
def test_the_same_values_as_numpy(count):
    rng = np.random.default_rng(count)
    values = collections.deque(rng.gamma(2.0, 40.0, count).tolist(), maxlen=300)
    ours = linear_percentiles(values, (0, 5, 50, 95, 100))
    assert ours == pytest.approx(tuple(np.percentile(list(values), (0, 5, 50, 95, 100))), rel=0, abs=1e-9)
    assert all(isinstance(v, float) for v in ours)


def test_order_of_arrival_does_not_matter():
    assert linear_percentiles([30.0, 10.0, 20.0, 40.0], (50, 95)) == pytest.approx((25.0, 38.5))
