"""Inputs the project ships (``shared/reference``): found, skipped locally, a failure on CI.

A test whose input is missing skips with the reason on a developer machine; under
``CI=true`` the same situation fails, so that a CI run cannot skip a shipped check
silently (the pattern of the Kwant guard in ``conftest.py`` and of the SLURM test).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the shared folder of the project, or a copy carried next to the repository checkout
REFERENCE_ROOTS = (
    Path("/work/shared/reference"),
    REPO / "shared" / "reference",
    REPO / "data" / "reference",  # the copies the repository carries
)


def on_ci() -> bool:
    """True under ``CI=true`` (also ``1`` or ``yes``), as set by the CI runner."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def reference_file(relative: str, roots: tuple[Path, ...] = REFERENCE_ROOTS) -> Path:
    """Path of a shipped reference file, ``relative`` to ``shared/reference``.

    Skips the calling test when no root holds it, except under ``CI=true``, where the
    test fails with the places searched.
    """
    for root in roots:
        path = root / relative
        if path.exists():
            return path
    where = ", ".join(str(root / relative) for root in roots)
    if on_ci():
        pytest.fail(f"CI=true but the shipped reference file is missing (looked in {where}).")
    pytest.skip(f"reference file not found (looked in {where})")
