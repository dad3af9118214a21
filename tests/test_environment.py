"""The conda environment of the workflow (envs/mllg.yaml) and pyproject.toml agree.

Every rule names envs/mllg.yaml (`snakemake --sdm conda`, and the Apptainer image of
envs/mllg.def is built from it), while pip users get pyproject.toml's dependencies. These
tests keep the two in step (each runtime dependency present, under its conda name, with
bounds no looser than pyproject's) and check that every third-party module the package
and the rule scripts import is a declared runtime dependency. Files only: no network.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONDA_ENV = ROOT / "envs" / "mllg.yaml"
SOURCES = (ROOT / "src" / "mllg", ROOT / "scripts")

#: pip distribution -> the conda-forge names that provide it (any one of them will do).
CONDA_NAMES = {
    "torch": ("pytorch-cpu", "pytorch", "pytorch-gpu"),
    "matplotlib": ("matplotlib-base", "matplotlib"),
}

#: import name -> pip distribution, where the two differ.
DISTRIBUTION_OF_IMPORT = {
    "yaml": "pyyaml",
    "mpl_toolkits": "matplotlib",
    "functorch": "torch",
    "torchgen": "torch",
    "pytorch_lightning": "lightning",
    "lightning_fabric": "lightning",
}

#: Imports that are no third-party package: the package itself, the rule scripts' shared
#: module, and the `snakemake` object Snakemake injects into the rule scripts.
NOT_THIRD_PARTY = {"mllg", "_common", "snakemake"}

_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")
_CLAUSE = re.compile(r"^(>=|<=|==|!=|>|<|=)?\s*([0-9][0-9A-Za-z.*+!_\-]*)$")


def runtime_requirements() -> dict[str, Requirement]:
    """[project].dependencies and the negf extra, by canonical distribution name."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["negf"]
    return {canonicalize_name(r.name): r for r in map(Requirement, lines)}


def conda_specs(path: Path = CONDA_ENV) -> dict[str, list[tuple[str, Version]]]:
    """A conda environment file's dependencies: name -> [(operator, version), ...]."""
    specs = {}
    for entry in yaml.safe_load(path.read_text())["dependencies"]:
        if not isinstance(entry, str):  # a `pip:` section
            continue
        name, rest = _CONDA_SPEC.match(entry).groups()
        rest = rest.replace(" ", "")
        if rest.startswith("=") and not rest.startswith("=="):
            rest = "=" + rest[1:].partition("=")[0]  # name=version=build: keep the version
        clauses = []
        for clause in filter(None, rest.split(",")):
            if clause.lstrip("=") == "*":
                continue  # any version
            match = _CLAUSE.match(clause)
            assert match, f"{path.name}: cannot read the version clause {clause!r} of {entry!r}"
            op, text = match.groups()
            clauses.append((op or "=", Version(text.rstrip(".*"))))
        specs[canonicalize_name(name)] = clauses
    return specs


def conda_entry(dist: str, specs: dict) -> tuple[str, list] | None:
    """The conda name and clauses that provide pip distribution `dist`, if any."""
    for name in CONDA_NAMES.get(dist, (dist,)):
        if name in specs:
            return name, specs[name]
    return None


def _next_release(version: Version) -> Version:
    """The first version above the fuzzy conda pin `=version` (2.13 -> 2.14)."""
    release = list(version.release)
    release[-1] += 1
    return Version(".".join(map(str, release)))


def conda_bounds(clauses: list) -> tuple[Version | None, Version | None]:
    """Lowest allowed version and the (exclusive or inclusive) top of a conda spec."""
    lower = upper = None
    for op, version in clauses:
        if op in (">=", ">", "==", "="):
            lower = version if lower is None else max(lower, version)
        if op in ("<", "<=", "=="):
            top = version
        elif op == "=":
            top = _next_release(version)
        else:
            continue
        upper = top if upper is None else min(upper, top)
    return lower, upper


def pip_bounds(specifier: SpecifierSet) -> tuple[Version | None, Version | None]:
    """Lowest version a pip specifier states and its highest top (None: unbounded)."""
    lower = upper = None
    for spec in specifier:
        version = Version(spec.version.rstrip(".*"))
        if spec.operator in (">=", ">", "==", "~=", "==="):
            lower = version if lower is None else max(lower, version)
        if spec.operator in ("<", "<=", "==", "==="):
            upper = version if upper is None else min(upper, version)
        elif spec.operator == "~=":
            top = Version(".".join(map(str, version.release[:-1]))) if version.release else None
            upper = _next_release(top) if upper is None else min(upper, _next_release(top))
    return lower, upper


def test_conda_env_has_every_runtime_dependency() -> None:
    specs = conda_specs()
    missing = [
        f"{dist} (conda name: {' or '.join(CONDA_NAMES.get(dist, (dist,)))})"
        for dist in runtime_requirements()
        if conda_entry(dist, specs) is None
    ]
    assert not missing, (
        f"envs/mllg.yaml lacks runtime dependencies of pyproject.toml: {', '.join(missing)}"
    )


def test_conda_env_bounds_match_pyproject() -> None:
    specs = conda_specs()
    problems = []
    for dist, requirement in runtime_requirements().items():
        found = conda_entry(dist, specs)
        if found is None:
            continue  # reported by test_conda_env_has_every_runtime_dependency
        name, clauses = found
        pip_lower, pip_upper = pip_bounds(requirement.specifier)
        conda_lower, conda_upper = conda_bounds(clauses)
        where = f"{name} in envs/mllg.yaml vs {requirement} in pyproject.toml"
        if pip_lower is not None and (conda_lower is None or conda_lower < pip_lower):
            problems.append(f"{where}: lower bound {conda_lower} is below {pip_lower}")
        if conda_lower is not None and conda_lower not in requirement.specifier:
            problems.append(f"{where}: its lowest version {conda_lower} is not allowed by pip")
        if pip_upper is not None and (conda_upper is None or conda_upper > pip_upper):
            problems.append(f"{where}: allows versions above pyproject's {pip_upper}")
    assert not problems, "\n".join(problems)


def test_conda_env_python_satisfies_requires_python() -> None:
    requires = tomllib.loads(PYPROJECT.read_text())["project"]["requires-python"]
    clauses = conda_specs().get("python")
    assert clauses, "envs/mllg.yaml does not pin python"
    lower, _ = conda_bounds(clauses)
    assert lower is not None and lower in SpecifierSet(requires), (
        f"envs/mllg.yaml python {lower} does not satisfy requires-python {requires!r}"
    )


def third_party_imports() -> dict[str, set[str]]:
    """Top-level third-party modules imported under src/mllg/ and scripts/ -> files."""
    found: dict[str, set[str]] = {}
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if top in sys.stdlib_module_names or top in NOT_THIRD_PARTY:
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_runtime_dependency() -> None:
    imports = third_party_imports()
    assert {"numpy", "torch", "kwant"} <= imports.keys(), "the import scan found too little"
    declared = runtime_requirements()
    undeclared = [
        f"{module} ({canonicalize_name(DISTRIBUTION_OF_IMPORT.get(module, module))}), "
        f"imported in {', '.join(sorted(files))}"
        for module, files in sorted(imports.items())
        if canonicalize_name(DISTRIBUTION_OF_IMPORT.get(module, module)) not in declared
    ]
    assert not undeclared, (
        "imported but not a runtime dependency of pyproject.toml ([project].dependencies or "
        "the negf extra):\n" + "\n".join(undeclared)
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("numpy>=1.26", (Version("1.26"), None)),
        ("pytorch-cpu=2.13", (Version("2.13"), Version("2.14"))),
        ("kwant==1.5.0", (Version("1.5.0"), Version("1.5.0"))),
        ("torch >=2.4,<3", (Version("2.4"), Version("3"))),
        ("pytorch=2.13=cuda*", (Version("2.13"), Version("2.14"))),
        ("pytorch=*=cuda*", (None, None)),
        ("tinyarray", (None, None)),
    ],
)
def test_conda_spec_reading(entry: str, expected: tuple, tmp_path: Path) -> None:
    """The small conda-spec reader above understands the forms conda files use."""
    env = tmp_path / "env.yaml"
    env.write_text(yaml.safe_dump({"dependencies": [entry]}))
    ((_, clauses),) = conda_specs(env).items()
    assert conda_bounds(clauses) == expected
