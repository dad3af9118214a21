import hashlib
from pathlib import Path

import numpy as np
import pytest
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
