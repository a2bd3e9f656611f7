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
about 0.5 s or 100 runs, at least 3; the median). Each row is timed by
ricci (a fresh `ricci bench --filter ROW` process) and by the references
(one long-lived worker per thread count) back to back, within a few
seconds, ricci first in odd rounds and last in even ones, with a 0.5 s
pause before each side so that the other's idle threads (OpenBLAS and
OpenMP spin for a while after their work) are asleep: the memory-bound
rows swing by 10-50% over minutes with what the VM's neighbours do, and
timing whole suites one after the other put minutes between a row's two
sides. `--rounds N` repeats this N times; each time is then the median over
rounds and each ratio the median of the per-round ratios with their
[min-max].

Usage (from the repository root):
  cargo build --release -p ricci-cli
  python -m venv /tmp/venv-einsum
  /tmp/venv-einsum/bin/pip install numpy opt_einsum
  /tmp/venv-einsum/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
  /tmp/venv-einsum/bin/python bench/einsum_compare.py [--threads 1,2] [--quick] [--rounds 6]
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
from compare import cpu_model, log, median_seconds, run_ricci, worker_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Pause before each side times a row (see `main`).
SETTLE_S = 0.5


def parse_row(row):
    """(equation, [shape per operand]) of a row's shape string."""
    equation, sizes = row["shape"].split(" ", 1)
    size = {k: int(v) for k, v in (kv.split("=") for kv in sizes.split(","))}
    lhs = equation.split("->")[0]
    return equation, [[size[c] for c in term] for term in lhs.split(",")]


def worker(threads, quick):
    """Child process: thread variables are set. Prints one JSON line of
    library versions, then, for each ricci row read as a JSON line on stdin,
    one JSON line with the references' timings of that row."""
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

    info = {"numpy": np.__version__, "torch": torch_info, "opt_einsum": getattr(oe, "__version__", None)}
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        row = json.loads(line)
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
        del arrays
        print(json.dumps(out), flush=True)


class Refs:
    """One long-lived reference worker per thread count (its thread
    variables set before numpy loads), timing one row per request."""

    def __init__(self, threads, quick):
        cmd, env = worker_command(__file__, threads, quick)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = json.loads(self.read())

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"error: reference worker exited with {self.proc.wait()}")
        return line

    def time(self, row):
        self.proc.stdin.write(json.dumps(row) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.read())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def ricci_row(exe, name, threads, quick):
    """Times one row in a fresh `ricci bench` process: its JSON object."""
    cmd = [str(exe), "bench", "--json", "--threads", str(threads), "--filter", name]
    if quick:
        cmd.append("--quick")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited with {proc.returncode}")
    rows = [r for r in json.loads(proc.stdout) if r["name"] == name and r["threads"] == threads]
    if len(rows) != 1:
        sys.exit(f"error: {' '.join(cmd)} gave {len(rows)} rows named {name}")
    return rows[0]


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
    if args.rounds > 1 and args.rounds % 2:
        # The side that times a row second measured a few percent slower
        # (memory-bound rows), so each side should go first equally often.
        log("note: an even --rounds gives ricci and the references the first slot equally often")

    exe = Path(args.ricci)
    if not exe.is_file():
        sys.exit(f"error: {exe} not found; build it first: cargo build --release -p ricci-cli")
    # The row list, from one quick run of the whole filter.
    listing = argparse.Namespace(ricci=args.ricci, filter=args.filter, threads=args.threads, quick=True)
    ricci_rows = [r for r in run_ricci(listing) if r["name"].startswith("einsum")]
    counts = sorted({r["threads"] for r in ricci_rows})
    load_before = os.getloadavg()
    started = datetime.datetime.now()
    workers = {t: Refs(t, args.quick) for t in counts}
    info = workers[counts[0]].info
    rounds = []
    for i in range(args.rounds):
        if args.rounds > 1:
            log(f"round {i + 1} of {args.rounds}")
        ours, ref = {}, {}
        for r in ricci_rows:
            k = (r["name"], r["threads"])
            # ricci and the references time a row back to back (the order
            # alternating by round), so that both see the same machine.
            for side in ("ricci", "refs") if i % 2 == 0 else ("refs", "ricci"):
                # Idle threads of the side that just ran (OpenBLAS's and
                # OpenMP's busy-wait for up to ~0.1 s) must not share the
                # cores with the side that runs next.
                time.sleep(SETTLE_S)
                if side == "ricci":
                    ours[k] = ricci_row(exe, r["name"], r["threads"], args.quick)["median_s"]
                else:
                    ref[k] = workers[r["threads"]].time(r)
            log(f"{r['name']:<24} {r['threads']}  ricci {ours[k] * 1e3:.3f} ms  " + "  ".join(f"{a} {b * 1e3:.3f} ms" for a, b in ref[k].items() if a.endswith("_s")))
        rounds.append((ours, ref))
    for w in workers.values():
        w.close()
    load_after = os.getloadavg()

    print(f"## ricci einsum vs numpy and torch, {started:%Y-%m-%d %H:%M}")
    print()
    print(f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}")
    print(f"- numpy {info['numpy']} (optimize='optimal'); {info['torch']}; opt_einsum {info['opt_einsum']}")
    print("- each row timed by ricci and the references back to back (order alternating by round), so drifts in the machine's memory bandwidth hit both")
    print(f"- load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f} (above ~0.2 the figures are noisy)")
    print("- ratio = reference time / ricci time (> 1: ricci faster); ricci's time includes planning on every call, as numpy's and torch's do")
    if args.rounds > 1:
        print(f"- {args.rounds} alternating rounds: times are medians over rounds, ratios medians of the per-round ratios [min-max]")
    print()
    print("| row | equation and sizes | threads | ricci ms | numpy ms | torch ms | numpy/ricci | torch/ricci |")
    print("|---|---|--:|--:|--:|--:|--:|--:|")
    for r in ricci_rows:
        k = (r["name"], r["threads"])
        ours = [o[k] for o, _ in rounds]
        per = [ref.get(k, {}) for _, ref in rounds]
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
