#!/usr/bin/env python3
"""ricci einsum vs numpy.einsum(optimize='optimal') and torch.einsum, same rows, same run.

Runs `ricci bench --json --filter einsum`, then, once per thread count in a
fresh interpreter (OPENBLAS_NUM_THREADS and friends set before numpy loads;
torch.set_num_threads), times every row in numpy and PyTorch and prints one
markdown table with the time ratios reference/ricci (> 1: ricci is faster).

Each row's shape string is `EQUATION SIZES` (e.g. `bhqd,bhkd->bhqk
b=8,h=12,q=128,k=128,d=64`); inputs are standard normal float32 built from
it; a name ending in `_t` passes its first operand as a transposed view, as
ricci's row does. What each side runs per call:
  ricci   einsum(eq, operands): parse, plan (optimal), contract
  numpy   np.einsum(eq, *operands, optimize='optimal'): plans on every call too
  torch   torch.einsum(eq, *operands): plans with opt_einsum when torch finds it
          (torch.backends.opt_einsum), else contracts left to right
`einsum_plan_*` rows time planning alone: ricci's einsum_path against
np.einsum_path(optimize='optimal') (skipped above 8 operands, where numpy's
exhaustive search takes seconds to minutes) and opt_einsum.contract_path
(optimize='optimal' up to 8 operands, 'dp' beyond) when opt_einsum is installed.

Timing: the method of bench/compare.py (warm-up, then repetitions until
about 0.5 s or 100 runs, at least 3; the median). `--rounds N` alternates
(ricci, references 1 thread, references 2 threads) N times; each time is
then the median over rounds and each ratio the median of the per-round
ratios with their [min-max].

Usage (from the repository root):
  cargo build --release -p ricci-cli
  python -m venv /tmp/venv-einsum
  /tmp/venv-einsum/bin/pip install numpy opt_einsum
  /tmp/venv-einsum/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
  /tmp/venv-einsum/bin/python bench/einsum_compare.py [--threads 1,2] [--quick] [--rounds 3]
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from statistics import median
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import THREAD_ENV, cpu_model, log, median_seconds, run_ricci  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def parse_row(row):
    """(equation, [shape per operand]) of a row's shape string."""
    equation, sizes = row["shape"].split(" ", 1)
    size = {k: int(v) for k, v in (kv.split("=") for kv in sizes.split(","))}
    lhs = equation.split("->")[0]
    return equation, [[size[c] for c in term] for term in lhs.split(",")]


def worker(threads, quick):
    """Child process: thread variables are set. Reads ricci's rows on stdin,
    writes the references' timings as JSON on stdout."""
    import numpy as np

    try:
        import torch

        torch.set_num_threads(threads)
        torch_info = f"torch {torch.__version__}, opt_einsum path: {torch.backends.opt_einsum.is_available() and torch.backends.opt_einsum.enabled}"
    except ImportError:
        torch = None
        torch_info = "torch not installed"
    try:
        import opt_einsum as oe
    except ImportError:
        oe = None

    rows = json.load(sys.stdin)
    results = []
    for row in rows:
        if row["threads"] != threads:
            continue
        equation, shapes = parse_row(row)
        rng = np.random.default_rng(0)
        out = {"name": row["name"], "shape": row["shape"], "threads": threads}
        if row["name"].startswith("einsum_plan"):
            arrays = [np.empty(s, dtype=np.float32) for s in shapes]
            if len(shapes) <= 8:
                out["numpy_s"] = median_seconds(lambda: np.einsum_path(equation, *arrays, optimize="optimal"), quick)
            if oe is not None:
                how = "optimal" if len(shapes) <= 8 else "dp"
                out["opt_einsum_s"] = median_seconds(lambda: oe.contract_path(equation, *shapes, shapes=True, optimize=how), quick)
                out["opt_einsum_how"] = how
        else:
            arrays = []
            for i, s in enumerate(shapes):
                if i == 0 and row["name"].endswith("_t"):
                    stored = rng.standard_normal(s[:-2] + [s[-1], s[-2]], dtype=np.float32)
                    arrays.append(stored.swapaxes(-1, -2))
                else:
                    arrays.append(rng.standard_normal(s, dtype=np.float32))
            out["numpy_s"] = median_seconds(lambda: np.einsum(equation, *arrays, optimize="optimal"), quick)
            if torch is not None:
                tensors = [torch.from_numpy(a) if a.flags.c_contiguous else torch.from_numpy(a.swapaxes(-1, -2)).transpose(-1, -2) for a in arrays]
                with torch.no_grad():
                    out["torch_s"] = median_seconds(lambda: torch.einsum(equation, *tensors), quick)
        results.append(out)
        log(f"refs   {row['name']:<24} {threads}  " + "  ".join(f"{k} {v * 1e3:.3f} ms" for k, v in out.items() if k.endswith("_s")))
    json.dump({"rows": results, "info": {"numpy": np.__version__, "torch": torch_info, "opt_einsum": getattr(oe, "__version__", None)}}, sys.stdout)


def run_refs(rows, threads, quick):
    env = dict(os.environ)
    for var in THREAD_ENV:
        env[var] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(threads)]
    if quick:
        cmd.append("--quick")
    log(f"running numpy / torch with {threads} thread(s)")
    proc = subprocess.run(cmd, input=json.dumps(rows), stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"error: reference worker ({threads} threads) exited with {proc.returncode}")
    return json.loads(proc.stdout)


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def ratio(refs, ours):
    """Median per-round ratio reference/ricci, with its range over rounds."""
    pairs = [(r, o) for r, o in zip(refs, ours) if r is not None]
    if not pairs:
        return "-"
    rs = [r / o for r, o in pairs]
    spread = f" [{min(rs):.2f}-{max(rs):.2f}]" if len(rs) > 1 else ""
    return f"{median(rs):.2f}{spread}"


def med_or_none(xs):
    xs = [x for x in xs if x is not None]
    return median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ricci", default=str(ROOT / "target" / "release" / "ricci"), help="the ricci binary")
    ap.add_argument("--filter", default="einsum", help="rows whose name or shape contains WORD (default einsum)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians over rounds")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.quick)
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")

    load_before = os.getloadavg()
    started = datetime.datetime.now()
    rounds = []
    info = None
    for i in range(args.rounds):
        if args.rounds > 1:
            log(f"round {i + 1} of {args.rounds}")
        ricci_rows = [r for r in run_ricci(args) if r["name"].startswith("einsum")]
        counts = sorted({r["threads"] for r in ricci_rows})
        refs = {t: run_refs(ricci_rows, t, args.quick) for t in counts}
        info = info or next(iter(refs.values()))["info"]
        ours = {(r["name"], r["threads"]): r["median_s"] for r in ricci_rows}
        ref = {(r["name"], r["threads"]): r for run in refs.values() for r in run["rows"]}
        rounds.append((ricci_rows, ours, ref))
    load_after = os.getloadavg()
    ricci_rows = rounds[0][0]

    print(f"## ricci einsum vs numpy and torch, {started:%Y-%m-%d %H:%M}")
    print()
    print(f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}")
    print(f"- numpy {info['numpy']} (optimize='optimal'); {info['torch']}; opt_einsum {info['opt_einsum']}")
    print(f"- load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f} (above ~0.2 the figures are noisy)")
    print("- ratio = reference time / ricci time (> 1: ricci faster); ricci's time includes planning on every call, as numpy's and torch's do")
    if args.rounds > 1:
        print(f"- {args.rounds} alternating rounds: times are medians over rounds, ratios medians of the per-round ratios [min-max]")
    print()
    print("| row | equation and sizes | threads | ricci ms | numpy ms | torch ms | numpy/ricci | torch/ricci |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for r in ricci_rows:
        k = (r["name"], r["threads"])
        ours = [o[k] for _, o, _ in rounds]
        per = [ref.get(k, {}) for _, _, ref in rounds]
        numpy_s = [n.get("numpy_s") for n in per]
        if r["name"].startswith("einsum_plan"):
            oe_s = [n.get("opt_einsum_s") for n in per]
            how = per[0].get("opt_einsum_how")
            torch_cell = f"opt_einsum {how}: {ms(med_or_none(oe_s))}" if med_or_none(oe_s) is not None else "-"
            torch_ratio = ratio(oe_s, ours)
        else:
            torch_s = [n.get("torch_s") for n in per]
            torch_cell, torch_ratio = ms(med_or_none(torch_s)), ratio(torch_s, ours)
        print(
            f"| {r['name']} | `{r['shape']}` | {r['threads']} | {ms(median(ours))} | {ms(med_or_none(numpy_s))} | "
            f"{torch_cell} | {ratio(numpy_s, ours)} | {torch_ratio} |"
        )


if __name__ == "__main__":
    main()
