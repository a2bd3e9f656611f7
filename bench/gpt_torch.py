#!/usr/bin/env python3
"""GPT training speed and memory: PyTorch eager, and ricci in the same run.

The model is the one of scripts/fixtures/gpt.py (imported from there, so the
two cannot drift apart): pre-norm GPT, exact GELU, LayerNorm with bias,
lm_head not tied, float32. Vocabulary 65 (the size of char-level
Shakespeare), random token batches from a seeded generator, AdamW (lr 3e-4,
betas 0.9/0.95, weight decay 0.1), gradient clipping at norm 1.0.

  config   n_layer n_head n_embd block batch
  tiny        4      4     128     64    12
  small       6      6     384    256     8

Method (PyTorch): each config runs in a fresh Python process, so its peak
RSS is its own. The process sets torch.set_num_threads(N), builds the model,
runs --warmup untimed steps, then --steps timed ones; one step is forward,
loss, backward, clip_grad_norm_, optimizer step, zero_grad (set_to_none).
Batches are drawn before the timer starts. tokens/s = B*T / median step time.
Peak RSS is ru_maxrss of the process (it includes the torch libraries
themselves; baseline_rss_mb is the RSS right after `import torch`).

Measure on a quiet machine (the load average is printed before and after).
PyTorch's OpenMP threads spin while they wait; when other jobs hold the cores
a 2-thread step can be several times slower than a 1-thread one, which would
flatter ricci. --omp-passive sets OMP_WAIT_POLICY=PASSIVE for the PyTorch
processes, which removes most of that penalty on a busy machine; leave it off
for the published figures (they are what a PyTorch user gets by default).

ricci (--ricci PATH): `PATH train --data FILE --config C --steps S --json
--quiet --eval-every 0 --out TMPDIR` with RICCI_NUM_THREADS=N, on a generated
text of exactly 65 distinct characters (so the vocabulary, and the block size,
match; without --data ricci trains its addition task with a block of its own).
Its tokens_per_s and peak_rss_mb come from its JSON summary; the child's
ru_maxrss from os.wait4 is reported alongside as a cross-check. Note that
ricci's tokens_per_s is over all its steps (no warm-up is left out), so give
it enough steps for the first ones not to matter.

Usage (from the repository root):
  python bench/gpt_torch.py [--threads 2] [--configs tiny,small] [--warmup 3] [--steps 20]
  cargo build --release -p ricci-cli
  python bench/gpt_torch.py --ricci target/release/ricci --ricci-steps 50 [--rounds 5]

Output: one JSON line per measurement on stdout, then a markdown table with
the ratios ricci/pytorch (> 1: ricci is faster; for memory < 1 is better).
"""

import argparse
import importlib.util
import json
import os
import resource
from statistics import median
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 65
LR, BETAS, WEIGHT_DECAY, CLIP = 3e-4, (0.9, 0.95), 0.1, 1.0
CONFIGS = {
    # name: (n_layer, n_head, n_embd, block_size, batch_size)
    "tiny": (4, 4, 128, 64, 12),
    "small": (6, 6, 384, 256, 8),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def rss_mb_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


# ---------------------------------------------------------------- PyTorch side


def torch_worker(config, threads, warmup, steps, seed):
    """Runs in its own process: times training steps, prints one JSON line."""
    import torch  # imported here so the parent process stays small

    baseline = rss_mb_now()
    spec = importlib.util.spec_from_file_location("gpt_fixture", ROOT / "scripts" / "fixtures" / "gpt.py")
    gpt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpt)

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    n_layer, n_head, n_embd, block, batch = CONFIGS[config]
    model = gpt.Gpt(VOCAB, n_layer, n_head, n_embd, block)
    model.train()
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=LR, betas=BETAS, eps=1e-8, weight_decay=WEIGHT_DECAY)
    gen = torch.Generator().manual_seed(seed + 1)

    times, losses = [], []
    for i in range(warmup + steps):
        ids = torch.randint(0, VOCAB, (batch, block + 1), generator=gen)
        x, y = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        losses.append(loss.item())
        if i >= warmup:
            times.append(dt)

    step = median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "config": config,
                "threads": threads,
                "steps": steps,
                "tokens_per_s": batch * block / step,
                "step_ms_median": 1e3 * step,
                "step_ms_min": 1e3 * min(times),
                "peak_rss_mb": peak,
                "baseline_rss_mb": baseline,
                "final_loss": losses[-1],
                "torch": torch.__version__,
            }
        ),
        flush=True,
    )


def run_pytorch(config, threads, warmup, steps, seed, omp_passive=False):
    """A fresh interpreter per config; returns its JSON record."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    if omp_passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", config,
        "--threads", str(threads), "--warmup", str(warmup), "--steps", str(steps), "--seed", str(seed),
    ]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    record = json.loads(out.strip().splitlines()[-1])
    record["omp_wait_policy"] = env.get("OMP_WAIT_POLICY", "default")
    return record


# ---------------------------------------------------------------- ricci side
# >>> The ricci command line is not final: adjust the flags here. <<<


def make_text(path, n_chars=200_000, seed=7):
    """A text of exactly VOCAB distinct printable ASCII characters."""
    import random

    alphabet = [chr(c) for c in range(33, 33 + VOCAB)]
    rng = random.Random(seed)
    body = rng.choices(alphabet, k=n_chars - VOCAB)
    Path(path).write_text("".join(alphabet + body), encoding="ascii")


def run_ricci(binary, config, steps, threads, data=None):
    """Runs `ricci train` for one config; returns its JSON record.

    tokens_per_s and peak_rss_mb are ricci's own report (its final JSON
    object); child_maxrss_mb is the child's ru_maxrss from os.wait4, a
    cross-check of peak_rss_mb measured from outside.
    """
    with tempfile.TemporaryDirectory(prefix="ricci-bench-") as tmp:
        if data is None:
            data = os.path.join(tmp, "text.txt")
            make_text(data)
        cmd = [
            str(binary), "train", "--data", str(data), "--config", config, "--steps", str(steps),
            "--json", "--quiet", "--eval-every", "0", "--out", os.path.join(tmp, "run"),
        ]
        env = dict(os.environ, RICCI_NUM_THREADS=str(threads))
        with open(os.path.join(tmp, "stderr"), "w+") as err:
            t0 = time.perf_counter()
            child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
            stdout = child.stdout.read()
            child.stdout.close()
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
            wall = time.perf_counter() - t0
            err.seek(0)
            stderr = err.read()
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {child.returncode}: {stderr.strip()[-2000:]}")
    summary = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                pass
    if summary is None:
        raise RuntimeError(f"no JSON object in the output of {' '.join(cmd)}: {stdout[-2000:]}")
    n_layer, n_head, n_embd, block, batch = CONFIGS[config]
    return {
        "impl": "ricci",
        "config": config,
        "threads": threads,
        "steps": steps,
        # Same measure as the PyTorch side: tokens of one batch over the median step.
        "tokens_per_s": 1e3 * batch * block / summary["step_ms_median"],
        "step_ms_median": summary["step_ms_median"],
        "tokens_per_s_all_steps": summary["tokens_per_s"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "child_maxrss_mb": usage.ru_maxrss / 1024.0,
        "wall_s": wall,
        "final_loss": summary.get("train_loss"),
    }


# ---------------------------------------------------------------- report


def table(rows):
    """One line per config: medians over rounds; ratios are medians of the
    per-round ratios, with their range when there are several rounds."""
    lines = [
        "| config | PyTorch tok/s | ricci tok/s | ratio | PyTorch peak RSS MB | ricci peak RSS MB | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ratio(vals):
        spread = f" [{min(vals):.2f}-{max(vals):.2f}]" if len(vals) > 1 else ""
        return f"{median(vals):.2f}x{spread}"

    for config in CONFIGS:
        ps = [r for r in rows if r["impl"] == "pytorch" and r["config"] == config]
        rs = [r for r in rows if r["impl"] == "ricci" and r["config"] == config]
        if not ps:
            continue
        p_tok, p_rss = median([p["tokens_per_s"] for p in ps]), median([p["peak_rss_mb"] for p in ps])
        if not rs:
            lines.append(f"| {config} | {p_tok:.0f} | - | - | {p_rss:.0f} | - | - |")
            continue
        pairs = list(zip(ps, rs))
        lines.append(
            f"| {config} | {p_tok:.0f} | {median([r['tokens_per_s'] for r in rs]):.0f} | "
            f"{ratio([r['tokens_per_s'] / p['tokens_per_s'] for p, r in pairs])} | {p_rss:.0f} | "
            f"{median([r['peak_rss_mb'] for r in rs]):.0f} | "
            f"{ratio([r['peak_rss_mb'] / p['peak_rss_mb'] for p, r in pairs])} |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--configs", default="tiny,small", help="comma-separated: tiny, small")
    ap.add_argument("--warmup", type=int, default=3, help="untimed PyTorch steps")
    ap.add_argument("--steps", type=int, default=20, help="timed PyTorch steps")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--ricci", metavar="PATH", help="the ricci binary, to run it in the same run")
    ap.add_argument("--ricci-steps", type=int, default=50, help="steps of `ricci train` per config")
    ap.add_argument("--ricci-data", metavar="FILE", help="text for ricci (default: 65 random characters)")
    ap.add_argument("--rounds", type=int, default=1, help="alternating (ricci, PyTorch) rounds per config")
    ap.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE for PyTorch (busy machines)")
    ap.add_argument("--worker", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        torch_worker(args.worker, args.threads, args.warmup, args.steps, args.seed)
        return

    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in configs:
        if c not in CONFIGS:
            ap.error(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    load = os.getloadavg()[0]
    log(f"load average before: {load:.2f}")
    if load > 0.5:
        log("warning: the machine is busy; the figures are noisy (see --omp-passive)")
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    rows = []
    for c in configs:
        for rnd in range(args.rounds):
            if args.ricci:
                log(f"ricci {c} (round {rnd + 1}) ...")
                rows.append(run_ricci(args.ricci, c, args.ricci_steps, args.threads, args.ricci_data))
                print(json.dumps(rows[-1]), flush=True)
            log(f"pytorch {c} (round {rnd + 1}) ...")
            rows.append(run_pytorch(c, args.threads, args.warmup, args.steps, args.seed, args.omp_passive))
            print(json.dumps(rows[-1]), flush=True)
    log(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print(f"threads {args.threads}")
    print(table(rows))


if __name__ == "__main__":
    main()
