"""ricci decompose against TensorLy (numpy backend), in the same run.

    python3 -m venv /tmp/venv-decomp && /tmp/venv-decomp/bin/pip install numpy tensorly
    cargo build --release -p ricci-cli
    /tmp/venv-decomp/bin/python bench/decomp_compare.py [--threads 1,2] [--reps 3]

The tensor: 100x100x100, CP rank 10 (standard normal factors) plus Gaussian
noise of 1% relative Frobenius norm, seed 0, float64, written once to a
temporary .npy that both sides read.

- CP rank 10: ricci `decompose --cp 10` and TensorLy
  `parafac(init='svd', n_iter_max=100, tol=1e-8)`: the same start, stopping
  rule (absolute change of the relative error below tol) and cap, so both
  iteration counts are printed.
- Tucker (10, 10, 10): ricci `--tucker 10,10,10` (HOSVD start + HOOI) and
  TensorLy `tucker(init='svd', n_iter_max=100, tol=1e-8)`.
- TT: ricci `--tt 0.05` (TT-SVD, error bound 5%) picks the ranks; TensorLy
  `tensor_train(rank=...)` gets ricci's ranks, so both compute the same
  truncation.

Time: the median over --reps runs of the decomposition call alone. For
ricci that is the `time_s` that `ricci decompose --json` measures around
the library call (reading the .npy and computing the final error are
outside it); for TensorLy, `time.perf_counter()` around the call. The
relative errors are computed once, outside the timing, as
||X - X_hat|| / ||X||. Threads: ricci gets RICCI_NUM_THREADS; TensorLy runs
in a fresh process per thread count with OPENBLAS/OMP/MKL_NUM_THREADS set
before numpy is imported.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RICCI = os.path.join(ROOT, "target", "release", "ricci")


def make_tensor(path):
    import numpy as np

    rng = np.random.default_rng(0)
    factors = [rng.standard_normal((100, 10)) for _ in range(3)]
    x = np.einsum("ir,jr,kr->ijk", *factors)
    noise = rng.standard_normal(x.shape)
    x = x + 0.01 * np.linalg.norm(x) / np.linalg.norm(noise) * noise
    np.save(path, x)


def ricci_runs(path, args, threads, reps):
    env = dict(os.environ, RICCI_NUM_THREADS=str(threads))
    results = []
    for _ in range(reps):
        out = subprocess.run(
            [RICCI, "decompose", path, *args, "--json"],
            env=env, check=True, capture_output=True, text=True,
        )
        results.append(json.loads(out.stdout))
    best = results[0]
    best["time_s"] = statistics.median(r["time_s"] for r in results)
    return best


def worker(path, reps, tt_ranks):
    """Runs in a fresh process whose BLAS thread count is already set."""
    import numpy as np
    import tensorly as tl
    from tensorly.decomposition import parafac, tensor_train, tucker

    tl.set_backend("numpy")
    x = np.load(path)
    norm = np.linalg.norm(x)

    def timed(fn):
        times, result = [], None
        for _ in range(reps):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times), result

    out = {}
    t, (cp, errors) = timed(lambda: parafac(
        x, rank=10, init="svd", n_iter_max=100, tol=1e-8, return_errors=True))
    out["cp"] = {"time_s": t, "iterations": len(errors),
                 "relative_error": float(np.linalg.norm(x - tl.cp_to_tensor(cp)) / norm)}
    t, tk = timed(lambda: tucker(x, rank=[10, 10, 10], init="svd", n_iter_max=100, tol=1e-8,
                                 return_errors=True))
    tk, errors = tk
    out["tucker"] = {"time_s": t, "iterations": len(errors),
                     "relative_error": float(np.linalg.norm(x - tl.tucker_to_tensor(tk)) / norm)}
    t, tt = timed(lambda: tensor_train(x, rank=tt_ranks))
    out["tt"] = {"time_s": t, "iterations": None,
                 "relative_error": float(np.linalg.norm(x - tl.tt_to_tensor(tt)) / norm)}
    print(json.dumps(out))


def tensorly_runs(path, threads, reps, tt_ranks):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run(
        [sys.executable, __file__, "--worker", path, "--reps", str(reps),
         "--tt-ranks", ",".join(map(str, tt_ranks))],
        env=env, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--worker")
    ap.add_argument("--tt-ranks")
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.reps, [int(r) for r in args.tt_ranks.split(",")])
        return
    print(f"# load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "cp10_100x100x100.npy")
        make_tensor(path)
        methods = [("cp", ["--cp", "10"]), ("tucker", ["--tucker", "10,10,10"]),
                   ("tt", ["--tt", "0.05"])]
        print("| method | threads | ricci s | TensorLy s | speed-up | ricci error | TensorLy error | ricci iters | TensorLy iters |")
        print("|---|---|---|---|---|---|---|---|---|")
        for threads in [int(t) for t in args.threads.split(",")]:
            ours = {m: ricci_runs(path, flags, threads, args.reps) for m, flags in methods}
            theirs = tensorly_runs(path, threads, args.reps, ours["tt"]["ranks"])
            for m, _ in methods:
                a, b = ours[m], theirs[m]
                label = m if m != "tt" else f"tt {a['ranks']}"
                print(f"| {label} | {threads} | {a['time_s']:.4f} | {b['time_s']:.4f} | "
                      f"{b['time_s'] / a['time_s']:.1f}x | {a['relative_error']:.6f} | "
                      f"{b['relative_error']:.6f} | {a['iterations']} | {b['iterations']} |",
                      flush=True)
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
