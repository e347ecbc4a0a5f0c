"""One stack-drift episode (the demo's): the weight rises linearly from its start to its peak,
then drops to zero, as when the filter bags are changed."""

from __future__ import annotations

import numpy as np

from greenfoundry.sim.faults import Faults, stack_drift_weight


def test_an_episode_rises_from_its_start_to_its_peak_and_drops_back():
    f = Faults(stack_drift=True, stack_drift_episode_s=(1000.0, 3000.0))
    t = np.array([0.0, 1000.0, 2000.0, 2500.0, 2999.0, 3000.0, 10_000.0])
    # By hand: (t - 1000) / 2000, clipped to 0…1, and 0 from the peak on.
    assert np.allclose(stack_drift_weight(f, t), [0, 0, 0.5, 0.75, 0.9995, 0, 0])


def test_without_an_episode_the_28_day_cycle_holds():
    f = Faults(stack_drift=True)
    day = 86400.0
    # Day 21 of the cycle is halfway from day 14 to day 28.
    assert np.allclose(stack_drift_weight(f, np.array([7 * day, 21 * day])), [0.0, 0.5])
