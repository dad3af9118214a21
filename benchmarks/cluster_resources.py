"""Per-rule resource requests of a scale beside their estimates, from a Snakemake dry run.

    .venv/bin/python benchmarks/cluster_resources.py [--scale paper] [--max-runtime 1440]
    .venv/bin/python benchmarks/cluster_resources.py --calibrate <workdir> [--scale demo]

Counts the jobs of every rule and system in ``snakemake -n --config scale=<scale>`` (all
four shipped systems), and prints, per system and rule, the estimate of
:func:`mllg.workflow.resources.estimate` (one CPU thread, measured unit costs), the first
request, the attempts a job needs within ``cluster.max_runtime``, and the requested
CPU- and GPU-hours (all attempts of all jobs; rules that run inside Snakemake excluded),
as a Markdown table with totals. With ``--calibrate``, instead: every job of a finished
run in ``<workdir>`` (its Snakemake benchmark files, ``results/<system>/benchmarks/``)
beside the estimate of its rule, with the ratio measured / estimated for wall time and
peak memory.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import yaml

from mllg.config import deep_merge, load_system_files, validate_config
from mllg.workflow.resources import LOCAL_RULES, estimate, resource_table

REPO = Path(__file__).resolve().parents[1]


def job_counts(scale: str, max_runtime: int) -> dict[str, Counter]:
    """system -> Counter(rule -> jobs) of the dry run of ``scale``."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp, "cluster.yaml")
        extra.write_text(yaml.safe_dump({"scale": scale, "cluster": {"max_runtime": max_runtime}}))
        cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--forceall"]
        cmd += ["--configfile", "config/config.yaml", str(extra)]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True).stdout
    counts: dict[str, Counter] = {}
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    \w+: .*\n?)*)", out, re.M):
        wild = re.search(r"wildcards: .*?system=(\w+)", m.group(2))
        if wild:
            counts.setdefault(wild.group(1), Counter())[m.group(1)] += 1
    return counts


def rule_of(tsv: Path, bench: Path) -> str:
    """The rule a Snakemake benchmark file belongs to (its path under benchmarks/)."""
    parts = tsv.relative_to(bench).with_suffix("").parts
    if parts[0] == "active":
        return {"explore": "explore", "select": "select", "label": "label"}.get(
            parts[-1], "retrain"
        )
    if parts[0] == "figures":
        return "figures"
    return parts[0]


def calibrate(workdir: Path, systems: dict) -> None:
    """Measured (benchmark TSV: wall s, max_rss MB) against the estimate, per job."""
    print("| system | job | measured s | estimate s | ratio | max RSS MB | estimate MB | ratio |")
    print("|" + "---|" * 8)
    ratios, mem_ratios = [], []
    for name, cfg in systems.items():
        bench = workdir / "results" / name / "benchmarks"
        for tsv in sorted(bench.rglob("*.tsv")):
            rule = rule_of(tsv, bench)
            rows = tsv.read_text().splitlines()
            head, vals = rows[0].split("\t"), rows[-1].split("\t")
            got = dict(zip(head, vals))
            est = estimate(rule, cfg)
            secs, rss = float(got["s"]), float(got["max_rss"])
            r, m = secs / est.seconds, rss / est.mem_mb
            if rule not in ("figures", "summary", "learning_curve"):
                ratios.append(r)
                mem_ratios.append(m)
            job = tsv.relative_to(bench).with_suffix("")
            print(
                f"| {name} | {job} | {secs:.0f} | {est.seconds:.0f} | {r:.2f} | "
                f"{rss:.0f} | {est.mem_mb:.0f} | {m:.2f} |"
            )
    ratios.sort()
    mem_ratios.sort()
    print(
        f"\nwall time measured / estimated over {len(ratios)} jobs (without figures and "
        f"summary): min {ratios[0]:.2f}, median {ratios[len(ratios) // 2]:.2f}, max "
        f"{ratios[-1]:.2f}; peak memory: min {mem_ratios[0]:.2f}, median "
        f"{mem_ratios[len(mem_ratios) // 2]:.2f}, max {mem_ratios[-1]:.2f}."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="paper", choices=["demo", "repro", "paper"])
    ap.add_argument("--max-runtime", type=int, default=1440, help="cluster.max_runtime (min)")
    ap.add_argument("--calibrate", type=Path, help="workdir of a finished run to compare with")
    args = ap.parse_args()
    cfg = deep_merge(
        load_system_files(REPO / "config"),
        {"scale": args.scale, "cluster": {"max_runtime": args.max_runtime}},
    )
    validate_config(cfg, REPO / "workflow" / "schemas" / "config.schema.yaml")
    if args.calibrate:
        calibrate(args.calibrate, cfg["systems"])
        return
    counts = job_counts(args.scale, args.max_runtime)
    rows = resource_table(cfg["systems"], counts, cfg["cluster"])
    print(f"scale = {args.scale}, cluster = {cfg['cluster']}\n")
    head = (
        "| system | rule | jobs | estimate (min, 1 thread) | est. mem (MB) | request runtime "
        "(min) | request mem_mb | attempts | gpu | requested CPU-h | requested GPU-h |"
    )
    print(head)
    print("|" + "---|" * 11)
    cpu = gpu = est_h = 0.0
    for r in rows:
        local = r["rule"] in LOCAL_RULES
        name = r["rule"] + (" (local)" if local else "")
        print(
            f"| {r['system']} | {name} | {r['jobs']} | {r['estimate_min']} | "
            f"{r['estimate_mem_mb']} | {r['runtime_min']} | {r['mem_mb']} | {r['attempts']} | "
            f"{r['gpu']} | {0 if local else r['cpu_hours']} | {0 if local else r['gpu_hours']} |"
        )
        if not local:
            cpu += r["cpu_hours"]
            gpu += r["gpu_hours"]
            est_h += r["jobs"] * r["estimate_min"] / 60
    print(
        f"\nTotal: {sum(r['jobs'] for r in rows)} jobs; estimate {est_h:.0f} job-hours on one "
        f"thread each; requested {cpu:.0f} walltime-hours (all attempts), of which "
        f"{gpu:.0f} GPU-hours."
    )


if __name__ == "__main__":
    main()
