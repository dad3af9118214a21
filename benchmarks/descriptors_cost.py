"""Cost of exported BP models: seconds per frame (energy + autograd fields), one thread.

Loads every exported model given on the command line onto L x L lattices of its kind
and times energy + fields of the model (float64 as trained, a float32 copy) and of the
production :class:`mllg.nn.MLFieldProvider` (float32 copy). Table columns:
model, lattice, s/frame float64, float32, provider, provider microseconds per site.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors_cost.py \\
        results/triangular_120/train/eq/seed0/model --L 64 128
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import torch

from mllg.lattice import make_lattice
from mllg.nn import BPModel, MLFieldProvider, ModelConfig, load_model
from mllg.textures import random_spins


def per_frame(model: BPModel, lat_n: int, dtype: torch.dtype, repeat: int = 3) -> float:
    """Seconds per frame for energy + fields on random spins."""
    s = torch.as_tensor(random_spins(lat_n, 0)[None], dtype=dtype)
    model(s)
    t0 = time.perf_counter()
    for _ in range(repeat):
        model(s)
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--L", type=int, nargs="+", default=[64, 128])
    args = p.parse_args()
    torch.set_num_threads(1)
    out = {}
    for path in args.models:
        meta = json.loads((path / "config.json").read_text())
        for size in args.L:
            lat = make_lattice(meta["lattice"], size, size)
            m64 = load_model(path, lat)
            cfg = ModelConfig.from_dict({**meta["model"], "dtype": "float32"})
            m32 = BPModel(lat, cfg)
            m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
            row = {
                "float64": per_frame(m64, lat.N, torch.float64),
                "float32": per_frame(m32, lat.N, torch.float32),
            }
            prov = MLFieldProvider(m64, dtype="float32")
            s = random_spins(lat.N, 1)
            prov(s)
            t0 = time.perf_counter()
            for _ in range(3):
                prov(s)
            row["provider_float32"] = (time.perf_counter() - t0) / 3
            out[f"{path.parent.name} {size}x{size}"] = row
            print(
                f"| {path.parent.name} | {size}x{size} | {row['float64']:.3f} | "
                f"{row['float32']:.3f} | {row['provider_float32']:.4f} | "
                f"{1e6 * row['provider_float32'] / lat.N:.2f} |",
                flush=True,
            )
    print(json.dumps({"load": os.getloadavg(), "s_per_frame": out}))


if __name__ == "__main__":
    main()
