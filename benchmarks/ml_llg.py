"""ML-LLG production engine: cost per LLG step, throughput, memory and the GEMM floor.

Run (one run, everything back to back; writes nothing but stdout)::

    .venv/bin/python benchmarks/ml_llg.py            # full (~10-20 min on 2 loaded cores)
    .venv/bin/python benchmarks/ml_llg.py --quick    # smaller sizes, no KPM/ED

Tables (random weights: timing does not depend on trained values):

(a) time per LLG step (semi-implicit midpoint = 2 field evaluations + integrator) of
    ML (float32 provider) vs KPM and ED on the double-exchange square lattice
    (t = 1, J = 6, f = 0.485, kT = 0.05 as in RESULTS.md) at 24x24 (ED feasible) and
    48x48 (KPM; ED there is ~170 s per evaluation and is not run);
(b) ML throughput in spin-steps/s (N x steps / s, full Langevin LLG step) from 32x32 to
    256x256, 1 and 2 torch threads, square and triangular lattices;
(c) peak resident memory of a 256x256 run (fresh subprocess, ``ru_maxrss``);
(d) where the time goes at 128x128 (1 thread): descriptor forward, network forward,
    backward, NumPy<->torch conversions, integrator; and the field evaluation against
    its floor = network matmul FLOPs / measured GEMM rate;
(e) torch.compile vs eager provider at 128x128 (1 thread, process-CPU medians, the
    floor of (g), compile time) for the models of (g);
(f) ML-LLG vs ED-LLG quenches on 6x6 (a linear BP model fitted to ED fields): energy
    relaxation and final S(q) compared within the seed-to-seed error (``--f``);
(g) the model's own field evaluation (``BPModel(spins)``: descriptor, network, one
    reverse pass) against the floor, 128x128 triangular, 1 thread, float32, medians of
    process-CPU time (``--g``); also the provider (``MLFieldProvider``) in the same run
    and its network step alone (outputs and input gradient by explicit back-propagation);
(h) spin-steps/s of a full LLG step through the provider, 128x128 and 256x256
    triangular, 1 thread (``--h``; ``--h2`` adds 2 threads);
(i) peak resident memory (``VmHWM``, fresh process) of the provider at 256x256
    triangular, 1 thread, two evaluations after construction (``--i``).

``--provider-kw JSON`` passes extra keyword arguments to ``MLFieldProvider`` in (g), (h)
and (i), e.g. ``'{"kernels": false}'`` for the torch operations instead of the compiled
descriptor kernels and the fused CPU path (the default), or ``'{"fused": false}'`` to
measure an older mllg (``PYTHONPATH``) whose provider still had its first fused path; (g)
then times that version's network formula.

Models: ``default`` = ``ModelConfig()`` (bispectrum r_c = 2 with degree-3 terms, SiLU
64-64); ``compact`` = bispectrum ``triples=False`` (degree <= 2), SiLU 32-32; (g) and (h)
add ``plain`` = plain descriptor r_c = 4, inner r_c = 2 (120 features triangular), SiLU
64-64, the recommended production model, and ``plain-compact`` (same, SiLU 32-32).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np
import torch

from mllg.dynamics import LLG
from mllg.lattice import make_lattice
from mllg.nn.model import BPModel, ModelConfig
from mllg.nn.provider import MLFieldProvider
from mllg.textures import random_spins

QUICK = "--quick" in sys.argv
CONFIGS = {
    "default": ModelConfig(),
    "compact": ModelConfig(descriptor={"triples": False}, hidden=(32, 32)),
}
PLAIN = {"kind": "plain", "r_cut": 4.0, "inner_r_cut": 2.0}
CONFIGS_G = {
    **CONFIGS,
    "plain": ModelConfig(descriptor=PLAIN, hidden=(64, 64)),
    "plain-compact": ModelConfig(descriptor=PLAIN, hidden=(32, 32)),
}
LLG_KW = dict(alpha=0.5, dt=0.05, kT=0.01, seed=0)


def model(kind: str, L: int, name: str) -> BPModel:
    torch.manual_seed(0)
    return BPModel(make_lattice(kind, L), CONFIGS[name])


CPU_TIMES: list[float] = []  # process CPU seconds per step of the last step_time call


def step_time(provider, n: int, steps: int) -> float:
    """Median wall seconds per full LLG step (after one warm-up step).

    The median process CPU time per step is appended to ``CPU_TIMES``: on a loaded shared
    machine it is a better proxy of the cost on a dedicated core (1 thread) than wall time.
    """
    llg = LLG(provider, **LLG_KW)
    s = random_spins(n, 1)
    s = llg.step(s)
    ts, cs = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        s = llg.step(s)
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    CPU_TIMES.append(float(np.median(cs)))
    return float(np.median(ts))


def table_b_cpu() -> None:
    """1 thread: spin-steps per wall second and per CPU second (load-robust proxy)."""
    torch.set_num_threads(1)
    sizes = (32, 64, 128, 256)
    print("\n## (b') ML throughput, 1 thread: spin-steps per wall second (per CPU second)")
    print("| lattice | model | " + " | ".join(f"{L}x{L}" for L in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for kind in ("square", "triangular"):
        for name in CONFIGS:
            row = []
            for L in sizes:
                n = L * L
                t = step_time(
                    MLFieldProvider(model(kind, L, name)), n, max(3, min(10, int(1e5 / n)))
                )
                row.append(f"{n / t:.3g} ({n / CPU_TIMES[-1]:.3g})")
            print(f"| {kind} | {name} | " + " | ".join(row) + " |", flush=True)


def net_flops(m: BPModel) -> int:
    """Matmul FLOPs per site of one field evaluation: forward + input-gradient backward."""
    dims = [m.net[0].in_features] + [
        layer.out_features for layer in m.net if hasattr(layer, "out_features")
    ]
    fwd = sum(2 * a * b for a, b in zip(dims[:-1], dims[1:], strict=True))
    return 2 * fwd


def gemm_rate(threads: int, n: int = 16384, k: int = 256, h: int = 64) -> float:
    """float32 GEMM rate (FLOP/s) of (n x k) @ (k x h), the shape of a first layer."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, k), torch.randn(k, h)
    a @ b
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n * k * h * reps / (time.perf_counter() - t0)


def header() -> None:
    print("# ML-LLG benchmark")
    print(
        f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, numpy {np.__version__}"
    )
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def table_a() -> None:
    from mllg.electrons.base import Ensemble
    from mllg.electrons.ed import ExactDiagonalization
    from mllg.electrons.kpm import KernelPolynomial, KPMAccuracyWarning
    from mllg.hamiltonian import SdHamiltonian

    torch.set_num_threads(1)
    print("\n## (a) seconds per LLG step, square double exchange, 1 thread, back to back")
    print(
        "| L | ML default | ML compact | KPM | ED | KPM/ML default | KPM/ML compact "
        "| ED/ML default |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for L, with_ed in ((24, True), (48, False)):
        lat = make_lattice("square", L)
        ham = SdHamiltonian(lat, J=6.0)
        ens = Ensemble.canonical(0.485, 0.05)
        ml = {n: step_time(MLFieldProvider(model("square", L, n)), lat.N, 5) for n in CONFIGS}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KPMAccuracyWarning)
            kpm = KernelPolynomial(ham, ens)
            t_kpm = step_time(kpm, lat.N, 1)
        t_ed = step_time(ExactDiagonalization(ham, ens), lat.N, 1) if with_ed else float("nan")
        print(
            f"| {L} | {ml['default']:.4f} | {ml['compact']:.4f} | {t_kpm:.2f} | "
            f"{t_ed:.2f} | {t_kpm / ml['default']:.0f} | {t_kpm / ml['compact']:.0f} | "
            f"{t_ed / ml['default']:.0f} |",
            flush=True,
        )


def table_b() -> None:
    sizes = (32, 64, 128) if QUICK else (32, 64, 128, 256)
    print("\n## (b) ML throughput, spin-steps/s (full Langevin midpoint step, float32)")
    print("| lattice | model | threads | " + " | ".join(f"{L}x{L}" for L in sizes) + " |")
    print("|---|---|---|" + "---|" * len(sizes))
    for kind in ("square", "triangular"):
        for name in CONFIGS:
            for threads in (1, 2):
                torch.set_num_threads(threads)
                row = []
                for L in sizes:
                    n = L * L
                    steps = max(3, min(20, int(2e5 / n)))
                    t = step_time(MLFieldProvider(model(kind, L, name)), n, steps)
                    row.append(f"{n / t:.3g}")
                print(f"| {kind} | {name} | {threads} | " + " | ".join(row) + " |", flush=True)


def table_c() -> None:
    L = 128 if QUICK else 256
    print(f"\n## (c) peak resident memory, {L}x{L}, 3 LLG steps (fresh process)")
    print("| lattice | model | peak RSS (GB) | baseline after imports (GB) |")
    print("|---|---|---|---|")
    for kind in ("square", "triangular"):
        for name in CONFIGS:
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child-memory", kind, str(L), name],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            res = json.loads(out)
            print(f"| {kind} | {name} | {res['peak_gb']:.2f} | {res['base_gb']:.2f} |", flush=True)


def _vm_hwm_gb() -> float:
    """Peak resident set (VmHWM) of this process in GB.

    ``ru_maxrss`` is not used: on Linux it keeps the parent's high-water mark across
    ``fork``/``exec``, which would report the benchmark parent's memory.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # pragma: no cover


def child_memory(kind: str, L: int, name: str) -> None:
    torch.set_num_threads(2)
    base = _vm_hwm_gb()
    step_time(MLFieldProvider(model(kind, L, name)), L * L, 2)
    print(json.dumps({"peak_gb": _vm_hwm_gb(), "base_gb": base}))


def table_d() -> None:
    L = 64 if QUICK else 128
    print(f"\n## (d) where the time goes, {L}x{L} triangular, 1 thread, ms per field evaluation")
    rates = {t: gemm_rate(t) for t in (1, 2)}
    print(
        f"float32 GEMM rate (16384x256 @ 256x64): 1 thread {rates[1] / 1e9:.1f} GFLOP/s, "
        f"2 threads {rates[2] / 1e9:.1f} GFLOP/s"
    )
    torch.set_num_threads(1)
    print(
        "| model | features | descriptor fwd | network fwd | backward | "
        "numpy<->torch | eval total | integrator per step | floor | eval/floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in CONFIGS:
        m = model("triangular", L, name)
        p = MLFieldProvider(m)
        s = random_spins(m.lattice.N, 2)
        p(s)
        reps = 5
        copy = p.model.model  # the provider's float32 copy of the model
        st = torch.as_tensor(s, dtype=torch.float32)[None]
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(reps):
                g = copy.descriptor(st)
            t_desc = (time.perf_counter() - t0) / reps
            w, b = copy.folded_first_layer()
            t0 = time.perf_counter()
            for _ in range(reps):
                copy.net[1:](torch.nn.functional.linear(g, w) + b)
            t_rest = (time.perf_counter() - t0) / reps
        p.timings = dict.fromkeys(p.timings, 0.0)
        t0 = time.perf_counter()
        for _ in range(reps):
            p(s)
        t_eval = (time.perf_counter() - t0) / reps
        tm = {k: v / reps for k, v in p.timings.items()}
        t_step = step_time(p, m.lattice.N, reps)
        t_int = t_step - 2 * t_eval
        floor = net_flops(m) * m.lattice.N / rates[1]
        print(
            f"| {name} | {m.descriptor.n_features} | {1e3 * t_desc:.1f} | {1e3 * t_rest:.1f} | "
            f"{1e3 * tm['backward']:.1f} | {1e3 * (tm['to_torch'] + tm['to_numpy']):.2f} | "
            f"{1e3 * t_eval:.1f} | {1e3 * t_int:.1f} | {1e3 * floor:.2f} | "
            f"{t_eval / floor:.0f} |",
            flush=True,
        )
        print(f"  (network matmul FLOPs per site and evaluation: {net_flops(m)})")


def table_e() -> None:
    """torch.compile of the provider vs eager (process-CPU medians, 1 thread)."""
    L = 64 if QUICK else 128
    torch.set_num_threads(1)
    reps = 11
    rate = _gemm_rate_cpu()
    print(
        f"\n## (e) torch.compile, {L}x{L} triangular, 1 thread, float32, ms per field "
        f"evaluation (median process-CPU time of {reps})"
    )
    print(f"float32 GEMM rate (16384x256 @ 256x64, same run): {rate / 1e9:.1f} GFLOP/s")
    print(f"load: {_uptime()}")
    print("| model | floor | eager | compiled | eager/floor | compiled/floor | compile time (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, cfg in CONFIGS_G.items():
        torch.manual_seed(0)
        m = BPModel(make_lattice("triangular", L), cfg)
        s = random_spins(m.lattice.N, 3)
        res = {}
        for comp in (False, True):
            p = MLFieldProvider(m, compile=comp)
            t0 = time.perf_counter()
            p(s)
            first = time.perf_counter() - t0
            res[comp] = (_cpu_median(lambda p=p, s=s: p(s), reps), first)
        floor = net_flops(m) * m.lattice.N / rate
        print(
            f"| {name} | {1e3 * floor:.2f} | {1e3 * res[False][0]:.1f} | "
            f"{1e3 * res[True][0]:.1f} | {res[False][0] / floor:.1f} | "
            f"**{res[True][0] / floor:.1f}** | {res[True][1]:.0f} |",
            flush=True,
        )
    print(f"load at the end: {_uptime()}")


def _cpu_median(fn, reps: int) -> float:
    """Median process-CPU seconds of ``fn()`` after one warm-up call (1 thread: robust to
    the load of a shared machine, which mostly deschedules the process)."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        ts.append(time.process_time() - t0)
    return float(np.median(ts))


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _provider_kw() -> dict:
    """Extra ``MLFieldProvider`` keyword arguments from ``--provider-kw JSON`` (default none)."""
    if "--provider-kw" not in sys.argv:
        return {}
    return json.loads(sys.argv[sys.argv.index("--provider-kw") + 1])


def _gemm_rate_cpu() -> float:
    """float32 GEMM rate (FLOP/s, process-CPU median) of (16384 x 256) @ (256 x 64)."""
    a, b = torch.randn(16384, 256), torch.randn(256, 64)
    return 2 * 16384 * 256 * 64 / _cpu_median(lambda: a @ b, 21)


def _g_row(name: str, cfg: ModelConfig, L: int, rate: float, reps: int) -> str:
    """One row of table (g): descriptor, network, model and provider times (CPU medians)."""
    torch.manual_seed(0)
    m = BPModel(make_lattice("triangular", L), ModelConfig(**{**cfg.to_dict(), "dtype": "float32"}))
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    spins = random_spins(m.lattice.N, 2)
    s = torch.as_tensor(spins, dtype=torch.float32)[None]
    sg = s.clone().requires_grad_(True)
    with torch.no_grad():
        g = m.descriptor(s)
    # incoming gradient in the layout the first linear layer's backward produces
    w = torch.randn(g.shape, dtype=g.dtype)
    x = g.detach().clone().requires_grad_(True)  # keeps the descriptor's channel-major layout

    def desc_fwd():
        with torch.no_grad():
            m.descriptor(s)

    def net_fb():  # as BPModel.network_outputs: standardization folded into layer 1
        if hasattr(m, "folded_first_layer"):
            weight, bias = m.folded_first_layer()
            out = m.net[1:](torch.nn.functional.linear(x, weight) + bias)
        else:  # code before the folding (PYTHONPATH to an older mllg)
            out = m.net((x - m.feature_mean) / m.feature_std)
        torch.autograd.grad(out.sum(), x)

    t_fwd = _cpu_median(desc_fwd, reps)
    t_desc = _cpu_median(lambda: torch.autograd.grad(m.descriptor(sg), sg, w), reps)
    t_net = _cpu_median(net_fb, reps)
    t_eval = _cpu_median(lambda: m(s), reps)
    p = MLFieldProvider(m, **_provider_kw())
    t_prov = _cpu_median(lambda: p(spins), reps)
    step = getattr(p, "_step", None)  # explicit MLP back-propagation (newer providers)
    t_step = _cpu_median(lambda: step(g[0]), reps) if hasattr(step, "activation") else None
    floor = net_flops(m) * m.lattice.N / rate
    step_txt = "-" if t_step is None else f"{1e3 * t_step:.1f}"
    return (
        f"| {name} | {m.descriptor.n_features} | {1e3 * t_fwd:.1f} | {1e3 * t_desc:.1f} | "
        f"{1e3 * t_net:.1f} | {step_txt} | {1e3 * t_eval:.1f} | {1e3 * floor:.2f} | "
        f"**{t_eval / floor:.1f}** | {1e3 * t_prov:.1f} (**{t_prov / floor:.1f}x**) |"
    )


def table_g() -> None:
    """BPModel's own field evaluation vs the floor (process-CPU medians, 1 thread)."""
    L = 64 if QUICK else 128
    torch.set_num_threads(1)
    reps = 11
    rate = _gemm_rate_cpu()
    print(
        f"\n## (g) BPModel field evaluation vs floor, {L}x{L} triangular, 1 thread, float32, "
        f"ms (median process-CPU time of {reps})"
    )
    print(f"float32 GEMM rate (16384x256 @ 256x64, same run): {rate / 1e9:.1f} GFLOP/s")
    print(f"load: {_uptime()}; provider {_provider_kw()}")
    print(
        "| model | features | descriptor fwd | descriptor fwd+bwd | network fwd+bwd | "
        "provider network step | model eval | floor | eval/floor | provider |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, cfg in CONFIGS_G.items():
        print(_g_row(name, cfg, L, rate, reps), flush=True)
    print(f"load at the end: {_uptime()}")


def table_h() -> None:
    """Spin-steps/s of a full LLG step through the provider, wall time."""
    sizes = (64,) if QUICK else (128, 256)
    threads_list = (1, 2) if "--h2" in sys.argv else (1,)
    print("\n## (h) spin-steps/s (full Langevin midpoint step, float32 provider)")
    print(f"load: {_uptime()}; provider {_provider_kw()}")
    print("| model | threads | " + " | ".join(f"{L}x{L}" for L in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for name in CONFIGS_G:
        for threads in threads_list:
            torch.set_num_threads(threads)
            row = []
            for L in sizes:
                torch.manual_seed(0)
                m = BPModel(make_lattice("triangular", L), CONFIGS_G[name])
                n = L * L
                steps = max(3, min(10, int(1e5 / n)))
                p = MLFieldProvider(m, **_provider_kw())
                row.append(f"{n / step_time(p, n, steps):.3g}")
            print(f"| {name} | {threads} | " + " | ".join(row) + " |", flush=True)
    print(f"load at the end: {_uptime()}")


def child_memory_provider(name: str, L: int, kw: dict) -> None:
    """Peak memory of a provider: build, two evaluations, VmHWM (fresh process)."""
    torch.set_num_threads(1)
    base = _vm_hwm_gb()
    torch.manual_seed(0)
    m = BPModel(make_lattice("triangular", L), CONFIGS_G[name])
    p = MLFieldProvider(m, **kw)
    s = random_spins(L * L, 1)
    p(s)
    p(s)
    print(json.dumps({"peak_gb": _vm_hwm_gb(), "base_gb": base}))


def table_i() -> None:
    """Peak resident memory of the provider at 256x256 triangular (fresh processes)."""
    L = 128 if QUICK else 256
    kw = json.dumps(_provider_kw())
    print(
        f"\n## (i) peak resident memory (VmHWM), {L}x{L} triangular, provider {kw}, "
        "1 thread, build + 2 evaluations (fresh process)"
    )
    print(f"load: {_uptime()}")
    print("| model | peak (GB) | after imports (GB) |")
    print("|---|---|---|")
    for name in CONFIGS_G:
        out = subprocess.run(
            [sys.executable, __file__, "--child-provider", name, str(L), kw],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        res = json.loads(out.splitlines()[-1])
        print(f"| {name} | {res['peak_gb']:.2f} | {res['base_gb']:.2f} |", flush=True)


def fitted_linear_model(lat, ed, n_train: int = 16, seed: int = 11):
    """Linear BP model (pair couplings within r_c = 3.5) fitted to ED perpendicular fields.

    ``eps_i = sum_k c_k G_ik`` with the plain descriptor, realised exactly by a ReLU network
    (``relu(x) - relu(-x) = x``); c from linear least squares on ``n_train`` random states.
    """
    from mllg.textures import random_spins as rs

    desc = {"kind": "plain", "r_cut": 3.5, "bond_cut": 0.0, "chirality": False}
    probe = BPModel(lat, ModelConfig(descriptor=desc))
    k = probe.descriptor.n_features
    rng = np.random.default_rng(seed)
    s = np.stack([rs(lat.N, rng) for _ in range(n_train)])
    h = np.stack([ed(x) for x in s])
    st = torch.as_tensor(s).requires_grad_(True)
    g = probe.descriptor(st).sum(1)
    basis = np.stack(
        [-torch.autograd.grad(g[:, j].sum(), st, retain_graph=True)[0].numpy() for j in range(k)]
    )

    def perp(v, spins):
        return v - np.sum(v * spins, -1, keepdims=True) * spins

    coef = np.linalg.lstsq(perp(basis, s[None]).reshape(k, -1).T, perp(h, s).ravel(), rcond=None)[0]
    m = BPModel(lat, ModelConfig(descriptor=desc, hidden=(2 * k,), activation="relu"))
    eye = torch.eye(k, dtype=torch.float64)
    c = torch.as_tensor(coef)
    with torch.no_grad():
        m.net[0].weight.copy_(torch.cat([eye, -eye]))
        m.net[0].bias.zero_()
        m.net[2].weight.copy_(torch.cat([c, -c])[None])
        m.net[2].bias.zero_()
    s_test = rs(lat.N, rng)
    err = perp(MLFieldProvider(m)(s_test) - ed(s_test), s_test)
    rel = float(np.sqrt((err**2).mean() / (perp(ed(s_test), s_test) ** 2).mean()))
    return m, rel


def table_f() -> None:
    """ML-LLG vs ED-LLG quenches: energy relaxation and S(q) across seeds."""
    from mllg.analysis.structure import structure_factor
    from mllg.electrons.base import Ensemble
    from mllg.electrons.ed import ExactDiagonalization
    from mllg.hamiltonian import SdHamiltonian

    torch.set_num_threads(1)
    lat = make_lattice("triangular", 6)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=0.5), Ensemble.canonical(0.25, kT=0.2))
    m, rel = fitted_linear_model(lat, ed)
    ml = MLFieldProvider(m)
    n_seeds, n_steps, every = (4, 200, 50) if QUICK else (8, 1500, 250)
    kw = dict(alpha=0.3, dt=0.2, kT=0.002)
    print(
        "\n## (f) ML-LLG vs ED-LLG quench, 6x6 triangular s-d (J = 0.5, f = 1/4, electron "
        f"kT = 0.2), bath kT = {kw['kT']}, alpha = {kw['alpha']}, dt = {kw['dt']}, "
        f"{n_seeds} seeds per solver; ML and ED ensembles fully independent (different "
        "random initial states and noise streams)"
    )
    print(f"linear BP model fitted to ED fields of 16 random states: test perp rel-RMSE {rel:.3f}")
    res = {}
    for offset, (name, prov) in enumerate((("ml", ml), ("ed", ed))):
        e_runs, sq_runs = [], []
        for seed in range(n_seeds):
            llg = LLG(prov, seed=100 + seed + 1000 * offset, **kw)
            s0 = random_spins(lat.N, 200 + seed + 1000 * offset)
            frames = [f.spins for f in llg.run(s0, n_steps, every=every, energy=False)]
            e_runs.append([ed.energy(x) / lat.N for x in frames])  # ED energy of every frame
            sq_runs.append(structure_factor(lat, np.stack(frames)))
        res[name] = (np.array(e_runs), np.array(sq_runs))
    t = np.arange(0, n_steps + 1, every) * kw["dt"]
    print("| t | E/N ML-LLG (ED energy) | E/N ED-LLG | difference / combined stderr |")
    print("|---|---|---|---|")
    for j, tj in enumerate(t):
        a, b = res["ml"][0][:, j], res["ed"][0][:, j]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        print(
            f"| {tj:.0f} | {a.mean():.5f} +- {a.std(ddof=1) / np.sqrt(len(a)):.5f} | "
            f"{b.mean():.5f} +- {b.std(ddof=1) / np.sqrt(len(b)):.5f} | "
            f"{(a.mean() - b.mean()) / se:+.2f} |"
        )
    sa, sb = res["ml"][1][:, -1], res["ed"][1][:, -1]
    se = np.sqrt(sa.var(0, ddof=1) / len(sa) + sb.var(0, ddof=1) / len(sb))
    z = (sa.mean(0) - sb.mean(0)) / np.where(se > 0, se, np.inf)
    peak = int(np.argmax(sb.mean(0)))
    print(
        f"final S(q): peak of ED-LLG at q index {peak}, S = {sb.mean(0)[peak]:.2f} +- "
        f"{np.sqrt(sb.var(0, ddof=1)[peak] / len(sb)):.2f}; ML-LLG {sa.mean(0)[peak]:.2f} +- "
        f"{np.sqrt(sa.var(0, ddof=1)[peak] / len(sa)):.2f}; over all q: "
        f"max |z| = {np.abs(z).max():.2f}, rms z = {np.sqrt((z**2).mean()):.2f} (z = diff / se)"
    )


if __name__ == "__main__":
    if "--child-memory" in sys.argv:
        i = sys.argv.index("--child-memory")
        child_memory(sys.argv[i + 1], int(sys.argv[i + 2]), sys.argv[i + 3])
        raise SystemExit(0)
    if "--child-provider" in sys.argv:
        i = sys.argv.index("--child-provider")
        child_memory_provider(sys.argv[i + 1], int(sys.argv[i + 2]), json.loads(sys.argv[i + 3]))
        raise SystemExit(0)
    header()
    parts = {
        "--a": table_a,
        "--b": table_b,
        "--c": table_c,
        "--d": table_d,
        "--e": table_e,
        "--f": table_f,
        "--bcpu": table_b_cpu,
        "--g": table_g,
        "--h": table_h,
        "--i": table_i,
    }
    if "--h2" in sys.argv and "--h" not in sys.argv:
        sys.argv.append("--h")
    chosen = [fn for flag, fn in parts.items() if flag in sys.argv]
    for fn in chosen or (
        [table_b, table_c, table_d] if QUICK else [table_a, table_b, table_c, table_d, table_e]
    ):
        fn()
    print(
        f"\nuptime at the end: "
        f"{subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}"
    )
