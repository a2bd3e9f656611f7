#!/usr/bin/env python3
"""ricci vs numpy (OpenBLAS), the same rows, in the same run.

Runs `ricci bench --json`, then times the same rows in numpy once per thread
count (a fresh interpreter each time, with OPENBLAS_NUM_THREADS and friends
set before numpy loads, because OpenBLAS sizes its pool at import), measures
the machine's copy bandwidth for context, and prints one markdown table with
the ratio ricci/numpy of throughputs (> 1: ricci is faster).

Timing method, identical to `ricci bench`: warm-up runs, then repetitions
until about 0.5 s or 100 runs (at least 3), and the median.

On a shared machine whose speed drifts by tens of percent from one minute to
the next, one ricci run followed by one numpy run compares two different
machines. `--rounds N` repeats the whole measurement N times, alternating
(ricci, numpy 1 thread, numpy 2 threads, ricci, ...), and reports for each
row the median over rounds of ricci's time, of numpy's time and of the
per-round ratio, with the ratio's range; the copy bandwidth and each
elementwise row's share of it are likewise per round, then the median.
With rounds, a last column gives the ratio of the best round of each
(numpy's fastest round time over ricci's fastest): on this VM a process
sometimes runs 20-40% slower throughout for reasons outside it (the same
binary, same addresses, gives two distinct speeds from one launch to the
next), and the best round is the least disturbed measurement of each side.

The numpy reference for each row is what a numpy user would write:
  matmul, matmul_bt, matmul_batched   a @ b, a @ w.T (no copy), batched a @ b
  add_bcast                           x + bias (broadcast over rows)
  gelu                                tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
                                      numpy has no erf, so this is not ricci's exact
                                      (erf) gelu, and it makes several passes over memory
  exp                                 np.exp(x)
  sum                                 x.sum(axis=-1)
  softmax                             e = np.exp(x - x.max(-1, keepdims=True)); e / e.sum(-1, keepdims=True)
Names ending in _t take x.T (a transposed view) as input, as ricci's do.
numpy's elementwise and reduction loops are single-threaded whatever the
thread count; only its matmuls (OpenBLAS) use more threads.

Usage (from the repository root):
  cargo build --release -p ricci-cli
  .venv/bin/python bench/compare.py [--filter WORD] [--threads 1,2] [--quick] [--rounds 5]
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

ROOT = Path(__file__).resolve().parent.parent
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
COPY_ELEMS = 16 * 1024 * 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- timing


def plan(quick):
    """(warmup runs, warmup_s, min_reps, max_reps, budget_s), as in ricci's
    bench harness: warm-up lasts at least that many runs and that long."""
    return (1, 0.0, 1, 3, 0.05) if quick else (2, 0.1, 3, 100, 0.5)


def median_seconds(fn, quick):
    warmup, warmup_s, min_reps, max_reps, budget = plan(quick)
    start, runs = time.perf_counter(), 0
    while runs < warmup or time.perf_counter() - start < warmup_s:
        fn()
        runs += 1
    times = []
    spent = 0.0
    while len(times) < min_reps or (len(times) < max_reps and spent < budget):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        spent += dt
        times.append(dt)
    times.sort()
    n = len(times)
    return times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])


# ---------------------------------------------------------------- numpy rows (worker)


def numpy_row(np, row):
    """Returns (fn, work_kind, work) for one ricci row, or None if unknown."""
    rng = np.random.default_rng(0)
    dtype = {"f32": np.float32, "f64": np.float64}[row["dtype"]]
    name, shape = row["name"], row["shape"]

    def randn(*dims):
        return rng.standard_normal(dims, dtype=dtype)

    if name in ("matmul", "matmul_bt", "matmul_batched"):
        dims = [int(d) for d in shape.split("x")]
        if name == "matmul_batched":
            b, m, k, n = dims
            x, y = randn(b, m, k), randn(b, k, n)
        else:
            b, (m, k, n) = 1, dims
            x = randn(m, k)
            y = randn(n, k).T if name == "matmul_bt" else randn(k, n)
        return (lambda: np.matmul(x, y)), "gflops", 2.0 * b * m * k * n

    if name.startswith("linalg_"):
        from linalg_compare import linalg_row  # bench/linalg_compare.py

        return linalg_row(np, row, randn)
    if name.startswith("autograd_"):
        return None  # ricci-only rows: numpy has no autograd
    if name.startswith(("einsum", "hessian_", "gpt_", "minilm", "decomp")):
        return None  # compared by their own scripts (einsum_compare.py, ...)
    base, transposed = (name[:-2], True) if name.endswith("_t") else (name, False)
    rows, cols = (int(d) for d in shape.split("+")[0].split("x"))
    x = randn(rows, cols)
    if transposed:
        x = x.T
    elem = x.itemsize
    full = x.size * elem
    out_row = x.shape[0] * elem
    if base == "add_bcast":
        bias = randn(x.shape[-1])
        return (lambda: x + bias), "gbps", 2.0 * full + bias.size * elem
    if base == "gelu":
        c = dtype(np.sqrt(2.0 / np.pi))
        k3 = dtype(0.044715)
        half = dtype(0.5)
        return (lambda: half * x * (1 + np.tanh(c * (x + k3 * x * x * x)))), "gbps", 2.0 * full
    if base == "exp":
        return (lambda: np.exp(x)), "gbps", 2.0 * full
    if base == "sum":
        return (lambda: x.sum(axis=-1)), "gbps", full + out_row
    if base == "softmax":

        def softmax():
            e = np.exp(x - x.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

        return softmax, "gbps", 2.0 * full
    return None


def copy_bandwidth(np, threads, quick):
    """GB/s of np.copyto on 16M f32 (read + write), split over `threads` Python
    threads (numpy releases the GIL in copy loops)."""
    from concurrent.futures import ThreadPoolExecutor

    src = np.random.default_rng(0).standard_normal(COPY_ELEMS, dtype=np.float32)
    dst = np.empty_like(src)
    parts = [(s, min(s + COPY_ELEMS // threads + 1, COPY_ELEMS)) for s in range(0, COPY_ELEMS, COPY_ELEMS // threads + 1)]
    if threads == 1:
        fn = lambda: np.copyto(dst, src)  # noqa: E731
    else:
        pool = ThreadPoolExecutor(threads)

        def fn():
            list(pool.map(lambda p: np.copyto(dst[p[0] : p[1]], src[p[0] : p[1]]), parts))

    return 2.0 * src.nbytes / median_seconds(fn, quick) / 1e9


def worker(threads, quick):
    """Child process: OPENBLAS_NUM_THREADS is already set. Reads ricci's rows on
    stdin, writes numpy's timings as JSON on stdout."""
    import numpy as np

    rows = json.load(sys.stdin)
    results = []
    for row in rows:
        if row["threads"] != threads:
            continue
        spec = numpy_row(np, row)
        if spec is None:
            log(f"numpy: no reference for {row['name']}, skipped")
            continue
        fn, kind, work = spec
        med = median_seconds(fn, quick)
        results.append({"name": row["name"], "dtype": row["dtype"], "shape": row["shape"], "threads": threads, "median_s": med, kind: work / med / 1e9})
        log(f"numpy  {row['name']:<15} {row['dtype']}  {row['shape']:<16} {threads}  {med * 1e3:10.3f} ms")
    info = {"numpy": np.__version__, "blas": blas_name(np), "threadpool": blas_threads()}
    json.dump({"rows": results, "copy_gbps": copy_bandwidth(np, threads, quick), "info": info}, sys.stdout)


def blas_name(np):
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except Exception:  # older numpy: no dicts mode
        return "unknown BLAS"


def blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]


# ---------------------------------------------------------------- driver


def run_ricci(args):
    exe = Path(args.ricci)
    if not exe.is_file():
        sys.exit(f"error: {exe} not found; build it first: cargo build --release -p ricci-cli")
    rows = []
    for word in args.filter.split(",") if args.filter else [None]:
        cmd = [str(exe), "bench", "--json", "--threads", args.threads]
        if word:
            cmd += ["--filter", word]
        if args.quick:
            cmd.append("--quick")
        log("running " + " ".join(cmd))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: {' '.join(cmd)} exited with {proc.returncode}")
        seen = {key(r) for r in rows}
        rows += [r for r in json.loads(proc.stdout) if key(r) not in seen]
    return rows


def worker_command(script, threads, quick):
    """(command, environment) that re-runs `script` as a `--worker` for
    `threads` threads, the BLAS/OpenMP thread variables set before numpy loads."""
    env = dict(os.environ)
    for var in THREAD_ENV:
        env[var] = str(threads)
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", str(threads)]
    if quick:
        cmd.append("--quick")
    return cmd, env


def run_numpy(rows, threads, quick):
    cmd, env = worker_command(__file__, threads, quick)
    log(f"running numpy with {threads} thread(s)")
    proc = subprocess.run(cmd, input=json.dumps(rows), stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"error: numpy worker ({threads} threads) exited with {proc.returncode}")
    return json.loads(proc.stdout)


def throughput(row):
    if "gflops" in row:
        return row["gflops"], "GFLOP/s"
    if "gbps" in row:
        return row["gbps"], "GB/s"
    return float("nan"), "(time only)"


def throughput_at(row, seconds):
    """The row's throughput had it taken `seconds` (its work is fixed)."""
    value, unit = throughput(row)
    return value * row["median_s"] / seconds, unit


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def key(r):
    return (r["name"], r["dtype"], r["shape"], r["threads"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ricci", default=str(ROOT / "target" / "release" / "ricci"), help="the ricci binary")
    ap.add_argument("--filter", help="only rows whose name or shape contains WORD (as ricci bench --filter); several words comma-separated")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds of ricci and numpy; medians over rounds")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.quick)
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")

    load_before = os.getloadavg()
    started = datetime.datetime.now()
    # Per round: ricci's rows, numpy's rows by key, copy bandwidth by thread count.
    rounds = []
    info = None
    for i in range(args.rounds):
        if args.rounds > 1:
            log(f"round {i + 1} of {args.rounds}")
        ricci_rows = run_ricci(args)
        thread_counts = sorted({r["threads"] for r in ricci_rows})
        numpy_runs = {t: run_numpy(ricci_rows, t, args.quick) for t in thread_counts}
        ref = {key(r): r for run in numpy_runs.values() for r in run["rows"]}
        copy = {t: numpy_runs[t]["copy_gbps"] for t in thread_counts}
        info = info or next(iter(numpy_runs.values()))["info"]
        rounds.append(({key(r): r for r in ricci_rows}, ref, copy))
    load_after = os.getloadavg()
    ricci_rows = list(rounds[0][0].values())
    thread_counts = sorted({r["threads"] for r in ricci_rows})

    print(f"## ricci vs numpy, {started:%Y-%m-%d %H:%M}")
    print()
    print(f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}")
    print(f"- numpy {info['numpy']} with {info['blas']}; threads via {', '.join(THREAD_ENV)} (one process per count)")
    print(f"- load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f} (above ~0.2 the figures are noisy)")
    if args.rounds > 1:
        print(f"- {args.rounds} alternating rounds; times and ratios are medians over rounds, [min-max] of the per-round ratio;")
        print("  best: numpy's fastest round over ricci's fastest round")
    copies = ", ".join(
        f"{median([c[t] for _, _, c in rounds]):.1f} GB/s with {t} thread(s)" for t in thread_counts
    )
    print(f"- copy bandwidth (np.copyto, 16M f32, read + write): {copies}")
    print("- ratio = ricci throughput / numpy throughput (> 1: ricci faster); numpy's elementwise ops and reductions are single-threaded")
    print("- numpy's gelu is the tanh form (numpy has no erf), composed of several passes; ricci's is the exact erf form")
    print("- of copy: a GB/s row's throughput over the copy bandwidth with the same threads, per round, median")
    print()
    best_col = args.rounds > 1
    print("| op | dtype | shape | threads | ricci ms | ricci | numpy ms | numpy | ricci/numpy | of copy |" + (" best |" if best_col else ""))
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|" + ("--:|" if best_col else ""))
    for r in ricci_rows:
        k = key(r)
        mine = [rr[k] for rr, _, _ in rounds]
        theirs = [ref.get(k) for _, ref, _ in rounds]
        t_mine = median([x["median_s"] for x in mine])
        value, unit = throughput_at(r, t_mine)
        cells = [r["name"], r["dtype"], r["shape"], str(r["threads"]), f"{t_mine * 1e3:.3f}", f"{value:.1f} {unit}"]
        if any(n is None for n in theirs):
            cells += ["-", "-", "-"]
        else:
            t_np = median([n["median_s"] for n in theirs])
            n_value, _ = throughput_at(theirs[0], t_np)
            ratios = [n["median_s"] / x["median_s"] for n, x in zip(theirs, mine)]
            spread = f" [{min(ratios):.2f}-{max(ratios):.2f}]" if len(ratios) > 1 else ""
            cells += [f"{t_np * 1e3:.3f}", f"{n_value:.1f} {unit}", f"{median(ratios):.2f}{spread}"]
        if unit == "GB/s":
            shares = [x["gbps"] / c[r["threads"]] for x, (_, _, c) in zip(mine, rounds)]
            cells.append(f"{100 * median(shares):.0f}%")
        else:
            cells.append("-")
        if best_col:
            if any(n is None for n in theirs):
                cells.append("-")
            else:
                best_np = min(n["median_s"] for n in theirs)
                best_mine = min(x["median_s"] for x in mine)
                cells.append(f"{best_np / best_mine:.2f}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
