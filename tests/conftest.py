"""Shared fixtures: small lattices and solvers."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261125)


def pytest_configure(config: pytest.Config) -> None:
    """On CI every optional solver must be importable: a missing Kwant fails the run."""
    if os.environ.get("CI", "").lower() == "true":
        try:
            import kwant  # noqa: F401
        except ImportError as err:  # pragma: no cover - CI guard
            pytest.exit(f"CI=true but Kwant is not importable ({err}); fix the setup.", 1)
