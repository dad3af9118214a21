"""xarray + zarr v3 stores following the mllg data contract.

Every store is an :class:`xarray.Dataset` with dims ``frame``, ``site``, ``vec``;
coordinates ``x``, ``y`` (integer lattice coordinates of each site, site index
``i = x + Lx * y``) and ``vec = 0, 1, 2``; data variables such as ``spins``, ``fields``
(frame, site, vec), ``energy`` and ``time`` (frame); and attrs holding the lattice, the
physical parameters, the solver settings and a provenance record. Arrays are chunked
along ``frame``.

Trajectories are appended frame by frame. After every append the attribute
``n_frames`` is written last; it marks the frames that are complete. A store opened for
appending after a crash is first cut back to ``n_frames``, so a killed run resumes with
no frame lost or duplicated.

``time`` (frame) is a coordinate: :func:`open_store` indexes it, so ``ds.sel(time=t)``
selects frames (with plain ``xarray.open_zarr``: ``ds.set_xindex("time")`` first).

A workflow job writes its output under ``<output>.incomplete`` (:func:`staged_output`)
and renames it to ``<output>`` when it has finished: a job killed at its walltime leaves
the work folder, which its retry resumes; a finished store has consolidated metadata
(:func:`finalize_store`), so ``xarray.open_zarr`` opens it without warnings.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr
from numpy.typing import NDArray

import mllg
from mllg.lattice import Lattice

__all__ = [
    "PER_SITE",
    "StoreError",
    "TrajectoryWriter",
    "config_hash",
    "finalize_store",
    "git_commit",
    "job_key",
    "lattice_attrs",
    "lattice_from_attrs",
    "make_dataset",
    "open_store",
    "provenance",
    "staged_output",
    "write_dataset",
]

PER_SITE = {"spins", "fields", "torques"}


class StoreError(ValueError):
    """A zarr store that cannot be read or resumed; the message names the store."""


def lattice_attrs(lattice: Lattice) -> dict[str, Any]:
    """Data-contract attributes of a lattice (``W`` instead of ``Ly`` for a strip)."""
    out: dict[str, Any] = {"lattice": lattice.kind, "Lx": lattice.Lx}
    if lattice.kind == "strip":
        out["W"] = lattice.Ly
        out["periodic_y"] = bool(lattice.periodic_y)
    else:
        out["Ly"] = lattice.Ly
    return out


def lattice_from_attrs(attrs: Mapping[str, Any]) -> Lattice:
    """Rebuild the :class:`Lattice` described by store attributes."""
    kind = attrs.get("lattice")
    if kind == "strip":
        return Lattice("strip", int(attrs["Lx"]), int(attrs["W"]), bool(attrs.get("periodic_y")))
    if kind in ("square", "triangular"):
        return Lattice(kind, int(attrs["Lx"]), int(attrs["Ly"]))
    raise ValueError(f"store attribute lattice={kind!r} is not one of square, triangular, strip.")


def config_hash(config: Mapping[str, Any] | None) -> str:
    """SHA-256 of the canonical JSON form of a configuration (first 16 hex digits)."""
    text = json.dumps(config or {}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str:
    """Commit of the mllg source tree, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(mllg.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(config: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Provenance record: package version, git commit and the config hash."""
    return {
        "mllg_version": mllg.__version__,
        "git_commit": git_commit(),
        "config_hash": config_hash(config),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def make_dataset(lattice: Lattice, attrs: Mapping[str, Any], **variables: NDArray) -> xr.Dataset:
    """Dataset of the data contract from arrays with a leading frame axis.

    Arrays named in ``PER_SITE`` (and any of shape (F, N, 3)) get dims
    (frame, site, vec); 1D arrays get (frame,); (F, N) arrays get (frame, site).
    """
    data_vars = {}
    for name, arr in variables.items():
        arr = np.asarray(arr)
        if arr.ndim == 3 and arr.shape[1:] == (lattice.N, 3):
            dims: tuple[str, ...] = ("frame", "site", "vec")
        elif arr.ndim == 2 and arr.shape[1] == lattice.N:
            dims = ("frame", "site")
        elif arr.ndim == 1:
            dims = ("frame",)
        else:
            raise ValueError(
                f"variable {name!r} has shape {arr.shape}; expected (F,), (F, {lattice.N}) "
                f"or (F, {lattice.N}, 3) for this lattice."
            )
        data_vars[name] = (dims, arr)
    ds = xr.Dataset(
        data_vars,
        coords={
            "x": ("site", lattice.x.astype(np.int64)),
            "y": ("site", lattice.y.astype(np.int64)),
            "vec": ("vec", np.arange(3, dtype=np.int64)),
        },
    )
    if "time" in ds.data_vars and ds["time"].dims == ("frame",):
        ds = ds.set_coords("time")
    ds.attrs.update(_jsonable({**lattice_attrs(lattice), **attrs}))
    return ds


def _encoding(ds: xr.Dataset, frames_per_chunk: int) -> dict[str, dict]:
    enc = {}
    for name, var in ds.data_vars.items():
        chunks = tuple(frames_per_chunk if d == "frame" else n for d, n in zip(var.dims, var.shape))
        enc[name] = {"chunks": chunks}
    return enc


def write_dataset(path: str | Path, ds: xr.Dataset, frames_per_chunk: int | None = None) -> None:
    """Write a whole dataset as a new zarr v3 store (replacing any store at ``path``)."""
    n = ds.sizes.get("frame", 1)
    if frames_per_chunk is None:
        frame_bytes = max(1, sum(v.nbytes for v in ds.data_vars.values()) // max(n, 1))
        frames_per_chunk = int(max(1, min(n, (8 << 20) // frame_bytes)))
    ds = ds.assign_attrs(n_frames=int(n))
    ds.to_zarr(
        path, mode="w", zarr_format=3, consolidated=False, encoding=_encoding(ds, frames_per_chunk)
    )


def open_store(path: str | Path) -> xr.Dataset:
    """Open a store lazily (``xarray.open_zarr``), limited to its complete frames."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no zarr store at {path}.")
    try:
        ds = xr.open_zarr(path, consolidated=False, zarr_format=3)
    except Exception as err:  # unreadable metadata: JSON, zarr or xarray errors
        raise StoreError(
            f"the store at {path} cannot be opened ({type(err).__name__}: {err})."
        ) from err
    n = ds.attrs.get("n_frames")
    if n is not None and "frame" in ds.dims and ds.sizes["frame"] > n:
        ds = ds.isel(frame=slice(0, int(n)))
    if "time" in ds.variables and ds["time"].dims == ("frame",):
        ds = ds.set_coords("time")  # stores written before time became a coordinate
        if "time" not in ds.xindexes:
            ds = ds.set_xindex("time")
    return ds


def _drop_consolidated(path: Path) -> None:
    """Remove consolidated metadata from a store's root ``zarr.json`` (before appending:
    it would go stale)."""
    meta = path / "zarr.json"
    doc = json.loads(meta.read_text())
    if doc.pop("consolidated_metadata", None) is not None:
        tmp = meta.with_name("zarr.json.tmp")
        tmp.write_text(json.dumps(doc, indent=2))
        os.replace(tmp, meta)


def finalize_store(path: str | Path) -> None:
    """Consolidate the metadata of a finished zarr v3 store.

    ``xarray.open_zarr`` then reads one metadata document and warns about nothing. A
    store that is appended to later (:class:`TrajectoryWriter`) drops the consolidated
    copy first, so it can never describe stale array shapes.
    """
    with warnings.catch_warnings():
        # zarr notes that consolidated metadata is an extension of the v3 spec
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(str(path), zarr_format=3)


def _stores_in(path: Path) -> list[Path]:
    if (path / "zarr.json").exists():
        return [path]
    return sorted(p.parent for p in path.glob("*/zarr.json") if p.parent.suffix == ".zarr")


def job_key(
    params: Mapping[str, Any], wildcards: Mapping[str, Any], inputs: list[str | Path]
) -> str:
    """Identity of a workflow job's result, the ``key`` of :func:`staged_output`.

    The :func:`config_hash` of the job's parameters, wildcards, and the paths and
    modification times of its inputs (for a folder written by a workflow manager, the
    time of its ``.snakemake_timestamp`` marker), so a rerun upstream job makes a new key.
    """
    stamps = {}
    for name in inputs:
        marker = Path(name) / ".snakemake_timestamp"
        stamps[str(name)] = (marker if marker.exists() else Path(name)).stat().st_mtime_ns
    return config_hash({"params": dict(params), "wildcards": dict(wildcards), "inputs": stamps})


@contextlib.contextmanager
def staged_output(out: str | Path, key: str) -> Iterator[Path]:
    """Work on ``<out>.incomplete`` and publish it as ``out`` once the body has finished.

    Parameters
    ----------
    out : path of the output: a zarr store, or a folder of zarr stores and other files.
    key : identity of the job's settings (e.g. :func:`config_hash` of its parameters).

    Yields
    ------
    pathlib.Path
        The work path ``<out>.incomplete``. A work path left by an interrupted attempt
        with the same ``key`` (a job killed at its walltime) is kept, so that resumable
        writers continue it; one left with another key (or none) is removed first.

    Notes
    -----
    On normal exit every zarr store at the work path (the path itself, or the ``*.zarr``
    folders directly inside it) gets consolidated metadata (:func:`finalize_store`); then
    whatever is at ``out`` (e.g. the empty folder a workflow manager created) is removed
    and the work path is renamed to ``out`` (atomic on one filesystem). On an exception
    the work path stays for the next attempt and ``out`` is not created.
    """
    out = Path(out)
    work = out.with_name(out.name + ".incomplete")
    key_file = out.with_name(out.name + ".incomplete.key")
    if work.exists() and (not key_file.exists() or key_file.read_text() != key):
        shutil.rmtree(work) if work.is_dir() else work.unlink()
    work.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key)
    yield work
    if not work.exists():
        raise StoreError(f"the job finished without writing {work}.")
    for store in _stores_in(work):
        finalize_store(store)
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    elif out.exists() or out.is_symlink():
        out.unlink()
    os.replace(work, out)
    key_file.unlink()


class TrajectoryWriter:
    """Append-only trajectory store with crash-safe resume.

    Parameters
    ----------
    path : path of the zarr store.
    lattice : Lattice
    attrs : physical parameters, solver settings and provenance.

    Notes
    -----
    An existing store at ``path`` is resumed only if its lattice attributes and the
    ``config_hash`` inside its ``provenance`` equal those of ``attrs``; otherwise
    construction raises ``ValueError``. On resume, frames beyond the committed
    ``n_frames`` (a crash during an append) are cut off.
    """

    def __init__(
        self,
        path: str | Path,
        lattice: Lattice,
        attrs: Mapping[str, Any],
    ) -> None:
        self.path = Path(path)
        self.lattice = lattice
        self.attrs = _jsonable({**lattice_attrs(lattice), **attrs})
        self.n_frames = 0
        shutil.rmtree(self._partial, ignore_errors=True)  # a creation that was killed
        if self.path.exists() and any(self.path.iterdir()):
            self._resume()

    @property
    def _partial(self) -> Path:
        """Where the store is created before its atomic rename to ``path``."""
        return self.path.with_name(self.path.name + ".partial")

    def _identity(self, attrs: Mapping[str, Any]) -> tuple:
        prov = attrs.get("provenance", {}) or {}
        return (
            tuple((k, attrs.get(k)) for k in lattice_attrs(self.lattice)),
            prov.get("config_hash") if isinstance(prov, Mapping) else None,
        )

    def _resume(self) -> None:
        try:
            group = zarr.open_group(self.path, mode="r+", zarr_format=3)
            old = dict(group.attrs)
        except Exception as err:  # zarr raises many kinds for unreadable metadata
            raise StoreError(
                f"the store at {self.path} cannot be read ({type(err).__name__}: {err}); "
                "remove it or choose another output path."
            ) from err
        if self._identity(old) != self._identity(self.attrs):
            raise ValueError(
                f"the store at {self.path} was written for another configuration "
                f"(lattice/config hash {self._identity(old)} vs {self._identity(self.attrs)}); "
                "remove it or choose another output path."
            )
        _drop_consolidated(self.path)
        group = zarr.open_group(self.path, mode="r+", zarr_format=3, use_consolidated=False)
        n = int(old.get("n_frames", 0))
        for _, arr in group.arrays():
            if arr.ndim and arr.shape[0] > n and "frame" in _dims(arr):
                arr.resize((n,) + arr.shape[1:])
        self.n_frames = n

    @property
    def stored_attrs(self) -> dict[str, Any]:
        """Attributes of the store on disk (empty before the first append)."""
        if not self.path.exists():
            return {}
        return dict(zarr.open_group(self.path, mode="r", zarr_format=3).attrs)

    def set_attrs(self, **attrs: Any) -> None:
        """Update store attributes (e.g. a resume state) after the last append."""
        group = zarr.open_group(self.path, mode="r+", zarr_format=3)
        # One metadata write for all keys, so ``n_frames`` and the state that belongs to
        # that frame (e.g. the RNG state) are committed together; ``group.attrs.update``
        # (the MutableMapping one) would write zarr.json once per key.
        group.update_attributes(_jsonable(attrs))

    def append(self, attrs: Mapping[str, Any] | None = None, **variables: NDArray) -> None:
        """Append frames (arrays with a leading frame axis), then commit them.

        The data are written first, straight into the zarr arrays; ``n_frames`` and the
        optional ``attrs`` (e.g. the state of a random generator that belongs to the last
        frame) are written together afterwards, in one metadata update, so a crash at any
        point leaves the store at its previous committed frame.
        """
        ds = make_dataset(self.lattice, self.attrs, **variables)
        n_new = ds.sizes["frame"]
        if self.n_frames == 0:
            # created whole under another name, then renamed: a kill at any moment leaves
            # either no store or a complete one with its first frames committed
            ds.attrs.update(_jsonable({**(attrs or {}), "n_frames": n_new}))
            shutil.rmtree(self._partial, ignore_errors=True)
            ds.to_zarr(
                self._partial,
                mode="w",
                zarr_format=3,
                consolidated=False,
                encoding=_encoding(ds, 1),
            )
            if self.path.exists():  # an empty folder, or this run's store without frames
                shutil.rmtree(self.path)
            os.replace(self._partial, self.path)
            self.n_frames = n_new
            return
        else:
            group = zarr.open_group(self.path, mode="r+", zarr_format=3)
            stored = {name for name, arr in group.arrays() if "frame" in _dims(arr)}
            if stored != set(variables):
                raise ValueError(
                    f"append got variables {sorted(variables)} but the store at {self.path} "
                    f"holds {sorted(stored)}."
                )
            for name, value in variables.items():
                group[name].append(np.asarray(value, dtype=group[name].dtype), axis=0)
        self.n_frames += n_new
        self.set_attrs(n_frames=self.n_frames, **(attrs or {}))

    def last_frame(self) -> xr.Dataset:
        """The last complete frame (loaded), for resuming a run."""
        if self.n_frames == 0:
            raise StoreError(f"the store at {self.path} holds no complete frame.")
        k = self.n_frames - 1
        try:
            return open_store(self.path).isel(frame=k).load()
        except Exception as err:  # corrupt chunks, missing arrays, unreadable metadata
            raise StoreError(
                f"frame {k} of the store at {self.path} cannot be read "
                f"({type(err).__name__}: {err}); remove the store to start the run again."
            ) from err


def _dims(arr: zarr.Array) -> tuple[str, ...]:
    names = getattr(arr.metadata, "dimension_names", None)
    return tuple(names or ())
