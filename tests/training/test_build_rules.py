"""Rules of the artifact build that a poor burgers model exercises (fastlrnr/training/build_steps.py,
fastlrnr/training/calibrate.py): when answers are corrected by default, and the band beyond a
served domain that is a face of the trained one."""

from __future__ import annotations

import numpy as np

from fastlrnr.numerics.families import BURGERS_FAMILY
from fastlrnr.numerics.family import Domain
from fastlrnr.training.build_steps import correction_default
from fastlrnr.training.calibrate import extrapolation_set

DOMAIN = BURGERS_FAMILY.domains["burgers"]
MUS = DOMAIN.grid(3)
FACE = MUS[:, 0] == 1.0  # β = 1: the front breaks only at t = 1


def test_the_correction_is_on_where_it_helps_the_whole_sweep():
    fast = np.full(len(MUS), 0.05)
    assert correction_default(DOMAIN, MUS, fast, 0.1 * fast, 0.02) == (True, 0.0, None)
    worse = np.where(FACE, 0.5, 0.1) * fast  # a third of the sets 2x worse: not by the first rule
    worse[~FACE] = 2 * fast[~FACE]
    assert correction_default(DOMAIN, MUS, fast, worse, 0.02)[:2] == (False, 2 / 3)


def test_the_correction_is_on_when_only_it_makes_a_face_servable():
    """A burgers-like sweep: the uncorrected answers are above the target everywhere, the
    corrected ones far below it on the β = 1 face and far worse elsewhere."""
    fast = np.full(len(MUS), 0.05)
    corrected = np.where(FACE, 1e-4, 0.3)
    correct, worse, why = correction_default(DOMAIN, MUS, fast, corrected, 0.02)
    assert correct and worse == 2 / 3 and "on 9 of the sweep's 27 sets" in why and "ones on 0" in why
    # when the uncorrected answers serve as much, the first rule stands
    assert correction_default(DOMAIN, MUS, np.where(FACE, 0.01, 0.05), corrected, 0.02)[0] is False


def test_the_band_beyond_a_served_face_varies_the_parameter_the_face_fixes():
    served = Domain("burgers", {"beta": (1.0, 1.0), "nu": (1e-3, 1e-2), "rho": (0.2, 1.0)}, DOMAIN.params)
    alone = extrapolation_set(served, 60)
    assert np.all(alone[:, 0] == 1.0)  # without the trained domain β never leaves the face
    rows = extrapolation_set(served, 60, trained=DOMAIN)
    beta = rows[:, 0]
    assert np.any(beta > 1.0) and np.any(beta < 1.0) and beta.max() <= 3.0 and beta.min() >= 0.0
    assert np.all(~served.contains(rows))
    full = extrapolation_set(DOMAIN, 24)  # a domain with no fixed face: the same rows as without
    np.testing.assert_array_equal(extrapolation_set(DOMAIN, 24, trained=DOMAIN), full)
