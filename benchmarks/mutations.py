"""Mutation check: break the physics on purpose and list the tests that notice (issue 25).

Every mutation is an exact text replacement in one named source file (the script refuses
to run it when the text does not occur exactly once, so a refactoring cannot turn it into a
silent no-op). For each mutation the repository's ``src/``, ``tests/`` and
``pyproject.toml`` are copied to a temporary directory, the mutation is applied there, and
the named tests run with ``PYTHONPATH`` pointing at the mutated copy (checked: ``mllg`` is
imported from the copy). A control run of the same tests on the unmutated copy must pass.
The script prints, per mutation, the tests that fail; it exits with status 1 when a
mutation fails no test or a control run fails.

Usage (from the repository root, about 8 minutes on 2 cores for all mutations)::

    .venv/bin/python benchmarks/mutations.py            # every mutation
    .venv/bin/python benchmarks/mutations.py --list     # names and descriptions
    .venv/bin/python benchmarks/mutations.py midpoint_corrector jackson_sine
    .venv/bin/python benchmarks/mutations.py --no-control midpoint_corrector

The first four mutations are the table of issue 25; the last two break the shared
``fields_from_rho`` (a factor 1/2 on J, a transposed on-site block), which every solver
uses, so that only the solvers' independent closed-form tests can catch them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    """One deliberate bug: exact replacements in ``path`` and the tests that should fail.

    Attributes
    ----------
    name : str
        Short identifier (command-line argument).
    description : str
        What the mutation breaks, in words.
    path : str
        Source file, relative to the repository root.
    replacements : tuple of (str, str)
        ``(old, new)`` pairs; every ``old`` must occur exactly once in the file.
    tests : tuple of str
        Pytest arguments (files, node ids, ``-m``/``-k`` options) of the tests to run.
    """

    name: str
    description: str
    path: str
    replacements: tuple[tuple[str, str], ...]
    tests: tuple[str, ...]


NOT_SLOW = ("-m", "not slow")
FIELD_ROUTES = (
    "tests/test_ed.py::test_uniform_fm_fields_and_energy_from_the_analytic_occupation",
    "tests/test_kpm.py::test_uniform_fm_against_the_analytic_bands",
    "tests/test_negf.py::test_single_site_between_leads_matches_the_closed_form",
)

MUTATIONS = (
    Mutation(
        "midpoint_corrector",
        "the midpoint corrector evaluates the rotation at S_n instead of the midpoint",
        "src/mllg/dynamics.py",
        (
            (
                "new = cayley_rotate(spins, half * self._omega(mid, self.fields(mid) + eta))",
                "new = cayley_rotate(spins, half * self._omega(spins, self.fields(mid) + eta))",
            ),
        ),
        ("tests/test_dynamics.py", *NOT_SLOW),
    ),
    Mutation(
        "bispectrum_no_degree_3",
        "every degree-3 invariant dropped from the bispectrum (as if triples=False)",
        "src/mllg/descriptors.py",
        (
            (
                'if not config.triples and not (r1 == "1" and r2 == n):',
                'if not (r1 == "1" and r2 == n):',
            ),
            ("nontrivial if config.triples else []", "[]"),
        ),
        ("tests/test_descriptors.py",),
    ),
    Mutation(
        "jackson_sine",
        "the Jackson kernel without its sine term",
        "src/mllg/electrons/kpm.py",
        (
            (
                "return ((M - n + 1) * np.cos(q * n) + np.sin(q * n) / np.tan(q)) / (M + 1)",
                "return ((M - n + 1) * np.cos(q * n)) / (M + 1)",
            ),
        ),
        ("tests/test_kpm.py", *NOT_SLOW),
    ),
    Mutation(
        "precession_default",
        "the default precession sign flipped (-1 -> +1)",
        "src/mllg/dynamics.py",
        (("    precession: int = -1\n", "    precession: int = 1\n"),),
        ("tests/test_dynamics.py", *NOT_SLOW),
    ),
    Mutation(
        "fields_half_J",
        "fields_from_rho returns J/2 Tr[sigma rho_ii] (shared by every solver)",
        "src/mllg/electrons/base.py",
        (
            (
                'return J * np.einsum("abc,...icb->...ia", PAULI, rho).real',
                'return 0.5 * J * np.einsum("abc,...icb->...ia", PAULI, rho).real',
            ),
        ),
        FIELD_ROUTES,
    ),
    Mutation(
        "fields_transposed",
        "fields_from_rho uses Tr[sigma rho_ii^T] (the transpose the design warns about)",
        "src/mllg/electrons/base.py",
        (
            (
                'return J * np.einsum("abc,...icb->...ia", PAULI, rho).real',
                'return J * np.einsum("abc,...ibc->...ia", PAULI, rho).real',
            ),
        ),
        FIELD_ROUTES,
    ),
)


def copy_repository(dest: Path) -> None:
    """Copy ``src/``, ``tests/`` and ``pyproject.toml`` of the repository into ``dest``."""
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in ("src", "tests"):
        shutil.copytree(REPO / name, dest / name, ignore=skip)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")


def apply(mutation: Mutation, root: Path) -> None:
    """Apply the replacements of ``mutation`` to the copy at ``root`` (exactly once each)."""
    path = root / mutation.path
    text = path.read_text()
    for old, new in mutation.replacements:
        count = text.count(old)
        if count != 1:
            raise SystemExit(
                f"mutation {mutation.name}: the text to replace occurs {count} times in "
                f"{mutation.path} (expected once): {old!r}"
            )
        text = text.replace(old, new)
    path.write_text(text)


def run_tests(root: Path, tests: tuple[str, ...], tag: str) -> tuple[list[str], int, float]:
    """Run pytest on the copy at ``root``; return (failed test ids, tests run, seconds)."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
    check = subprocess.run(
        [sys.executable, "-c", "import mllg; print(mllg.__file__)"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    if not Path(check.stdout.strip()).is_relative_to(root):
        raise SystemExit(f"mllg is imported from {check.stdout.strip()}, not from the copy")
    report = root / f"{tag}.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += [f"--junitxml={report}", *tests]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if not report.exists():
        raise SystemExit(f"pytest wrote no report for {tag} ({' '.join(tests)})")
    failed, total = [], 0
    for case in ET.parse(report).getroot().iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            module = case.get("classname", "").replace(".", "/")
            failed.append(f"{module}.py::{case.get('name')}")
    return failed, total, seconds


def main(argv: list[str] | None = None) -> int:
    """Run the chosen mutations (all by default); print the failing tests of each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument(
        "--no-control", action="store_true", help="skip the control runs on unmutated code"
    )
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:24s} {m.path:28s} {m.description}")
        return 0
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"unknown mutation(s) {unknown}; choose from {sorted(known)}")
    chosen = [known[n] for n in args.names] if args.names else list(MUTATIONS)
    status = 0
    with tempfile.TemporaryDirectory(prefix="mllg-mutations-") as tmp:
        controls: dict[tuple[str, ...], list[str]] = {}
        for m in chosen:
            root = Path(tmp) / m.name
            copy_repository(root)
            if not args.no_control and m.tests not in controls:
                failed, total, sec = run_tests(root, m.tests, "control")
                controls[m.tests] = failed
                print(
                    f"control {' '.join(m.tests)}: {total} tests, {len(failed)} failed, {sec:.0f} s"
                )
                for name in failed:
                    print(f"    CONTROL FAILS: {name}")
                status |= bool(failed)
            apply(m, root)
            failed, total, sec = run_tests(root, m.tests, "mutant")
            caught = "CAUGHT" if failed else "NOT CAUGHT"
            print(f"\n[{caught}] {m.name}: {m.description}")
            print(
                f"    {m.path}; {len(failed)} of {total} tests fail ({sec:.0f} s): "
                f"pytest {' '.join(m.tests)}"
            )
            for name in failed:
                print(f"    FAILED {name}")
            status |= not failed
            shutil.rmtree(root)
    return int(status)


if __name__ == "__main__":
    sys.exit(main())
