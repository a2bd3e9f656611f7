#!/usr/bin/env python3
"""Hessian-vector products: ricci vs PyTorch (double backward) and JAX, same run.

The problem is the one of `ricci bench --filter hessian`
(crates/ricci-cli/src/bench/hessian_rows.rs): a 784-64-10 tanh MLP with
cross-entropy on a batch of 128 standard-normal inputs, labels the argmax of
each example's first 10 features, float32, 50,890 parameters.

Rows (what a user of each library writes):
  grad        loss and gradient of all four parameters
              torch: torch.autograd.grad(loss, params)
              jax:   jit(grad(loss))
  hvp         one Hessian-vector product from scratch
              torch: g = grad(loss, params, create_graph=True);
                     grad(sum(g_i * v_i), params)          (double backward)
              jax:   jit(lambda p, v: jvp(grad(loss), (p,), (v,))[1])
                     (forward-over-reverse, the JAX-recommended hvp)
  lanczos80   80 Lanczos steps with full reorthogonalisation (classical
              Gram-Schmidt after the three-term recurrence, a second pass
              when the first cancels most of the vector; basis in float64,
              in numpy for both Python libraries), top-5 Ritz values
              torch: one forward and create_graph backward, then 80 products
                     grad(g, params, grad_outputs=v, retain_graph=True)
              jax:   80 calls of the jitted hvp (JAX recomputes the forward
                     and gradient inside each, as jvp-of-grad does)
              ricci: Hessian::new then 80 products on the same graph

Timing: each library in its own process, pinned to the first N cores with
sched_setaffinity (torch.set_num_threads(N) as well; JAX/XLA sizes its pool
from the affinity mask); 3 warm-up calls (they include JAX's compilation),
then repetitions until 1 s or 50 runs (at least 5), median.
ricci: `ricci bench --filter hessian --json` with RICCI_NUM_THREADS=N (the
harness's own warm-up and median).

On a shared machine whose speed drifts from minute to minute, `--rounds N`
repeats (ricci, PyTorch, JAX) N times for each thread count, alternating,
and the table gives each library's median over the rounds and the median of
the per-round ratios with their range [min-max].

Usage (from the repository root; a venv with torch and jax):
  cargo build --release -p ricci-cli
  python bench/hessian_compare.py [--threads 1,2] [--rounds 5]
Prints one JSON line per measurement, then a markdown table.
"""

import argparse
import json
import os
from statistics import median
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
D, H, C, B = 784, 64, 10, 128
STEPS = 80


def median_seconds(fn):
    for _ in range(3):
        fn()
    times = []
    while len(times) < 5 or (len(times) < 50 and sum(times) < 1.0):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return median(times)


def lanczos_top5(np, hvp, v0, steps):
    """Lanczos as ricci's: the three-term recurrence, then full
    reorthogonalisation by classical Gram-Schmidt with a second pass when
    the first removes most of the vector (DGKS); basis in float64."""
    n = v0.size
    q = np.zeros((steps + 1, n))
    q[0] = v0 / np.linalg.norm(v0)
    alpha, beta = [], []
    for j in range(steps):
        w = hvp(q[j]).astype(np.float64)
        alpha.append(float(w @ q[j]))
        w -= alpha[-1] * q[j]
        if j > 0:
            w -= beta[-1] * q[j - 1]
        for _ in range(2):
            before = np.linalg.norm(w)
            w -= q[: j + 1].T @ (q[: j + 1] @ w)
            if np.linalg.norm(w) > before / np.sqrt(2):
                break
        b = float(np.linalg.norm(w))
        if j + 1 < steps:
            beta.append(b)
            q[j + 1] = w / b
    t = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    return np.linalg.eigvalsh(t)[-5:][::-1]


def torch_worker(threads):
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, D, generator=g)
    y = x[:, :C].argmax(-1)
    params = [
        torch.randn(s, generator=g).requires_grad_(True)
        for s in [(H, D), (H,), (C, H), (C,)]
    ]
    v = [torch.randn(p.shape, generator=g) for p in params]

    def loss():
        hidden = torch.tanh(torch.nn.functional.linear(x, params[0], params[1]))
        logits = torch.nn.functional.linear(hidden, params[2], params[3])
        return torch.nn.functional.cross_entropy(logits, y)

    def grad():
        return torch.autograd.grad(loss(), params)

    def hvp():
        gs = torch.autograd.grad(loss(), params, create_graph=True)
        inner = sum((gi * vi).sum() for gi, vi in zip(gs, v))
        return torch.autograd.grad(inner, params)

    v0 = torch.cat([t.reshape(-1) for t in v]).double().numpy()
    sizes = [p.numel() for p in params]

    def lanczos():
        gs = torch.autograd.grad(loss(), params, create_graph=True)

        def product(vec):
            parts = torch.from_numpy(vec.astype(np.float32)).split(sizes)
            outs = [pt.reshape(p.shape) for pt, p in zip(parts, params)]
            hv = torch.autograd.grad(gs, params, grad_outputs=outs, retain_graph=True)
            return torch.cat([h.reshape(-1) for h in hv]).numpy()

        return lanczos_top5(np, product, v0, STEPS)

    return {"grad": grad, "hvp": hvp, "lanczos80": lanczos}


def jax_worker(threads):
    import jax
    import jax.numpy as jnp
    import numpy as np

    key = jax.random.PRNGKey(0)
    k = jax.random.split(key, 10)
    x = jax.random.normal(k[0], (B, D), jnp.float32)
    y = jnp.argmax(x[:, :C], axis=-1)
    params = [jax.random.normal(k[i + 1], s, jnp.float32) for i, s in enumerate([(H, D), (H,), (C, H), (C,)])]
    v = [jax.random.normal(k[i + 5], p.shape, jnp.float32) for i, p in enumerate(params)]

    def loss(p):
        hidden = jnp.tanh(x @ p[0].T + p[1])
        logits = hidden @ p[2].T + p[3]
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    grad = jax.jit(jax.grad(loss))
    hvp = jax.jit(lambda p, t: jax.jvp(jax.grad(loss), (p,), (t,))[1])
    sizes = [int(np.prod(p.shape)) for p in params]
    v0 = np.concatenate([np.asarray(t).reshape(-1) for t in v]).astype(np.float64)

    def product(vec):
        parts = np.split(vec.astype(np.float32), np.cumsum(sizes)[:-1])
        t = [jnp.asarray(pt.reshape(p.shape)) for pt, p in zip(parts, params)]
        return np.concatenate([np.asarray(h).reshape(-1) for h in hvp(params, t)])

    return {
        "grad": lambda: jax.block_until_ready(grad(params)),
        "hvp": lambda: jax.block_until_ready(hvp(params, v)),
        "lanczos80": lambda: lanczos_top5(np, product, v0, STEPS),
    }


def worker(lib, threads):
    os.sched_setaffinity(0, set(range(threads)))
    rows = (torch_worker if lib == "torch" else jax_worker)(threads)
    for name, fn in rows.items():
        print(json.dumps({"lib": lib, "threads": threads, "row": name, "median_s": median_seconds(fn)}), flush=True)


def run_ricci(binary, threads):
    env = dict(os.environ, RICCI_NUM_THREADS=str(threads))
    out = subprocess.run(
        [binary, "bench", "--filter", "hessian", "--threads", str(threads), "--json"],
        stdout=subprocess.PIPE, text=True, env=env, check=True,
    ).stdout
    res = []
    for r in json.loads(out):
        res.append({"lib": "ricci", "threads": threads, "row": r["name"].removeprefix("hessian_"), "median_s": r["median_s"]})
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--ricci", default=str(ROOT / "target/release/ricci"))
    ap.add_argument("--rounds", type=int, default=1, help="alternating rounds; medians over rounds")
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "THREADS"))
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]))
        return
    if args.rounds < 1:
        sys.exit("error: --rounds must be at least 1")
    print(f"load before: {os.getloadavg()}", file=sys.stderr)
    results = []
    for rnd in range(args.rounds):
        for threads in [int(t) for t in args.threads.split(",")]:
            batch = run_ricci(args.ricci, threads)
            for lib in ["torch", "jax"]:
                env = dict(os.environ, OMP_NUM_THREADS=str(threads))
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", lib, str(threads)],
                    stdout=subprocess.PIPE, text=True, env=env, check=True,
                ).stdout
                batch += [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            for r in batch:
                r["round"] = rnd
                print(json.dumps(r), flush=True)
            results += batch
    print(f"load after: {os.getloadavg()}", file=sys.stderr)
    t = {}
    for r in results:
        t.setdefault((r["lib"], r["threads"], r["row"]), {})[r["round"]] = r["median_s"]

    def med(lib, threads, row):
        v = t.get((lib, threads, row))
        return median(list(v.values())) if v else None

    def ratio(num, den, threads, num_row, den_row=None):
        """Median and range over rounds of num's time over den's time."""
        a, b = t.get((num, threads, num_row)), t.get((den, threads, den_row or num_row))
        rs = [a[i] / b[i] for i in a if b and i in b] if a else []
        if not rs:
            return "-"
        spread = f" [{min(rs):.2f}-{max(rs):.2f}]" if len(rs) > 1 else ""
        return f"{median(rs):.2f}{spread}"

    if args.rounds > 1:
        print(f"\n{args.rounds} alternating rounds: times are medians over rounds; ratios are medians of per-round ratios [min-max]")
    print("\n| threads | row | ricci ms | PyTorch ms | JAX ms | PyTorch / ricci | JAX / ricci |")
    print("|---|---|---|---|---|---|---|")
    for threads in sorted({r["threads"] for r in results}):
        for row in ["grad", "hvp", "lanczos80"]:
            ri, to, ja = (med(lib, threads, row) for lib in ["ricci", "torch", "jax"])
            if None in (ri, to, ja):
                continue
            print(f"| {threads} | {row} | {ri*1e3:.2f} | {to*1e3:.2f} | {ja*1e3:.2f} | "
                  f"{ratio('torch', 'ricci', threads, row)} | {ratio('jax', 'ricci', threads, row)} |")
        if med("ricci", threads, "hvp") and med("ricci", threads, "grad"):
            print(f"| {threads} | hvp / grad | {ratio('ricci', 'ricci', threads, 'hvp', 'grad')} | "
                  f"{ratio('torch', 'torch', threads, 'hvp', 'grad')} | "
                  f"{ratio('jax', 'jax', threads, 'hvp', 'grad')} | | |")


if __name__ == "__main__":
    main()
