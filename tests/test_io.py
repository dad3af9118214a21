import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from mllg import io
from mllg.lattice import Lattice, make_lattice


def _attrs(config):
    return {
        "solver": "ed",
        "J": 2.0,
        "kT": 0.0,
        "filling": 0.25,
        "t1": 1.0,
        "t2": 0.0,
        "t3": 0.0,
        "provenance": io.provenance(config),
    }


def _tree_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _frames(rng, lat, n):
    return dict(
        spins=rng.normal(size=(n, lat.N, 3)),
        fields=rng.normal(size=(n, lat.N, 3)),
        energy=rng.normal(size=n),
        time=np.arange(n) * 0.1,
    )


def test_data_contract_roundtrip(tmp_path, rng):
    lat = make_lattice("triangular", 4)
    data = _frames(rng, lat, 3)
    ds = io.make_dataset(lat, _attrs({"a": 1}), **data)
    io.write_dataset(tmp_path / "d.zarr", ds)
    back = io.open_store(tmp_path / "d.zarr")
    assert back["spins"].dims == ("frame", "site", "vec")
    assert back["energy"].dims == ("frame",)
    np.testing.assert_array_equal(back["spins"].values, data["spins"])
    np.testing.assert_array_equal(back["x"].values, lat.x)
    assert back.attrs["lattice"] == "triangular" and back.attrs["Lx"] == 4
    assert back.attrs["provenance"]["config_hash"] == io.config_hash({"a": 1})
    assert zarr.open_group(tmp_path / "d.zarr", mode="r").metadata.zarr_format == 3
    assert io.lattice_from_attrs(back.attrs) == lat
    strip = Lattice("strip", 5, 2, periodic_y=False)
    assert io.lattice_from_attrs(io.lattice_attrs(strip)) == strip


def test_store_written_twice_is_identical(tmp_path, rng):
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 4)
    for name in ("a.zarr", "b.zarr"):
        w = io.TrajectoryWriter(tmp_path / name, lat, _attrs({"seed": 1}))
        for k in range(4):
            w.append(**{key: v[k : k + 1] for key, v in data.items()})
    assert _tree_digest(tmp_path / "a.zarr") == _tree_digest(tmp_path / "b.zarr")


def test_resume_cuts_incomplete_frames_and_appends(tmp_path, rng):
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 5)
    path = tmp_path / "t.zarr"
    w = io.TrajectoryWriter(path, lat, _attrs({"seed": 1}))
    for k in range(3):
        w.append(**{key: v[k : k + 1] for key, v in data.items()})
    # simulate a crash after the data of frame 3 was written but before n_frames moved on
    g = zarr.open_group(path, mode="r+")
    for _, arr in g.arrays():
        if "frame" in (arr.metadata.dimension_names or ()):
            arr.resize((4,) + arr.shape[1:])
    assert io.open_store(path).sizes["frame"] == 3  # readers see complete frames only
    w2 = io.TrajectoryWriter(path, lat, _attrs({"seed": 1}))
    assert w2.n_frames == 3
    for k in range(3, 5):
        w2.append(**{key: v[k : k + 1] for key, v in data.items()})
    back = io.open_store(path)
    np.testing.assert_array_equal(back["spins"].values, data["spins"])
    np.testing.assert_array_equal(back["time"].values, data["time"])


def test_frame_count_and_resume_state_are_committed_in_one_write(tmp_path, rng, monkeypatch):
    # a kill between two metadata writes would pair n_frames of frame k with the RNG
    # state of frame k - 1 (the resumed run then diverged, seen in the kill -9 test)
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 2)
    w = io.TrajectoryWriter(tmp_path / "t.zarr", lat, _attrs({"seed": 1}))
    w.append(**{key: v[:1] for key, v in data.items()})
    writes = []
    original = zarr.core.group.AsyncGroup._save_metadata

    async def counted(self, *args, **kwargs):
        writes.append(dict(self.metadata.attributes))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(zarr.core.group.AsyncGroup, "_save_metadata", counted)
    w.append(attrs={"rng_state": "state of frame 1"}, **{key: v[1:] for key, v in data.items()})
    assert len(writes) == 1
    assert writes[0]["n_frames"] == 2 and writes[0]["rng_state"] == "state of frame 1"


def test_store_from_another_config_is_not_touched(tmp_path, rng):
    lat = make_lattice("square", 3)
    path = tmp_path / "t.zarr"
    w = io.TrajectoryWriter(path, lat, _attrs({"seed": 1}))
    w.append(**{k: v[:1] for k, v in _frames(rng, lat, 1).items()})
    before = _tree_digest(path)
    with pytest.raises(ValueError, match="another configuration"):
        io.TrajectoryWriter(path, lat, _attrs({"seed": 2}))
    with pytest.raises(ValueError, match="another configuration"):
        io.TrajectoryWriter(path, make_lattice("square", 4), _attrs({"seed": 1}))
    assert _tree_digest(path) == before


def test_bad_variable_shape_is_rejected():
    lat = make_lattice("square", 3)
    with pytest.raises(ValueError, match="spins"):
        io.make_dataset(lat, {}, spins=np.zeros((2, 8, 3)))


def _write(path, lat, data, frames, config=None):
    w = io.TrajectoryWriter(path, lat, _attrs(config or {"seed": 1}))
    for k in frames:
        if k >= w.n_frames:
            w.append(**{key: v[k : k + 1] for key, v in data.items()})
    return w


def test_time_is_an_indexed_coordinate(tmp_path, rng):
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 4)
    _write(tmp_path / "t.zarr", lat, data, range(4))
    ds = io.open_store(tmp_path / "t.zarr")
    assert "time" in ds.coords and "time" not in ds.data_vars
    np.testing.assert_array_equal(ds.sel(time=0.2)["spins"].values, data["spins"][2])
    np.testing.assert_array_equal(ds.isel(frame=slice(1, 3))["time"].values, [0.1, 0.2])


def test_staged_output_publishes_a_consolidated_store_that_opens_without_warnings(tmp_path, rng):
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 3)
    out = tmp_path / "run.zarr"
    out.mkdir()  # Snakemake creates the parent folder of its output zarr.json
    with io.staged_output(out, "key") as work:
        assert work == tmp_path / "run.zarr.incomplete" and not out.joinpath("zarr.json").exists()
        _write(work, lat, data, range(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.zarr"]
    assert "consolidated_metadata" in json.loads((out / "zarr.json").read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(out)  # consolidated by default: no RuntimeWarning, nothing foreign
        assert ds.sizes["frame"] == 3 and "time" in ds.coords
    # a later append (a continued run) must not leave stale consolidated shapes behind
    more = _frames(rng, lat, 5)
    more = {k: np.concatenate([data[k], v[3:]]) for k, v in more.items()}
    _write(out, lat, more, range(5))
    with pytest.warns(RuntimeWarning, match="consolidated"):  # dropped, not stale
        assert xr.open_zarr(out).sizes["frame"] == 5


def test_staged_output_keeps_a_killed_attempt_for_its_retry_only(tmp_path, rng):
    lat = make_lattice("square", 3)
    data = _frames(rng, lat, 5)
    out = tmp_path / "run.zarr"
    with pytest.raises(KeyboardInterrupt), io.staged_output(out, "job A") as work:
        _write(work, lat, data, range(3))
        raise KeyboardInterrupt  # the walltime kill
    assert not out.exists() and io.open_store(work).sizes["frame"] == 3
    with io.staged_output(out, "job A") as work:  # the retry continues the 3 frames
        w = _write(work, lat, data, range(5))
        assert w.n_frames == 5
    np.testing.assert_array_equal(io.open_store(out)["spins"].values, data["spins"])
    with pytest.raises(RuntimeError), io.staged_output(out, "job A") as work:
        _write(work, lat, data, range(2))
        raise RuntimeError
    with io.staged_output(out, "job B") as work:  # other settings: starts over
        assert not work.exists()
        _write(work, lat, data, range(1))
    assert io.open_store(out).sizes["frame"] == 1


def test_job_key_changes_with_settings_and_with_rewritten_inputs(tmp_path):
    data = tmp_path / "data.zarr"
    data.mkdir()
    (data / "zarr.json").write_text("{}")
    model = tmp_path / "model"
    model.mkdir()
    (model / ".snakemake_timestamp").write_text("")
    inputs = [data / "zarr.json", model]
    key = io.job_key({"system": {"L": 8}}, {"seed": "0"}, inputs)
    assert key == io.job_key({"system": {"L": 8}}, {"seed": "0"}, inputs)
    assert key != io.job_key({"system": {"L": 9}}, {"seed": "0"}, inputs)
    assert key != io.job_key({"system": {"L": 8}}, {"seed": "1"}, inputs)
    os.utime(model / ".snakemake_timestamp", ns=(1, 1))  # the model was retrained
    assert key != io.job_key({"system": {"L": 8}}, {"seed": "0"}, inputs)
