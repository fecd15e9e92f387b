"""Shared fixtures, and the hypothesis profile every fuzz test runs under."""

import os

import numpy as np
import pytest
from hypothesis import settings

# Fuzz tests are seeded like every other statistical test: the same examples on every run
# (a failure reproduces, CI does not flicker), no example database written into the
# checkout. `HYPOTHESIS_PROFILE=explore pytest ...` draws fresh examples to hunt for more.
settings.register_profile("aeradio", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aeradio"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every statistical test is reproducible."""
    return np.random.default_rng(12345)
