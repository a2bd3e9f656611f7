"""all-MiniLM-L6-v2 sentence embeddings: ricci vs sentence-transformers
(PyTorch) vs onnxruntime, on the same threads, in the same run.

Run from the repository root (after scripts/fetch-minilm.sh):

    cargo build --release -p ricci-cli
    python -m venv /tmp/venv && /tmp/venv/bin/pip install torch sentence-transformers onnxruntime onnx onnxscript
    /tmp/venv/bin/python bench/minilm_bench.py [--threads 2] [--reps 10]

Two workloads:
  throughput  32 texts of exactly 128 tokens each ([CLS] and [SEP]
              included), one batch of 32: sentences per second;
  latency     one short text ("A man is eating food.", 8 tokens): ms per call.

Each engine does the whole job: tokenisation, encoder, mean pooling, L2
normalisation. Times are the median of --reps timed runs after one warm-up.
- PyTorch: `SentenceTransformer.encode(texts, batch_size=32)` with
  torch.set_num_threads(N), under inference mode.
- onnxruntime: the BERT encoder plus pooling and normalisation exported to
  ONNX here (torch.onnx.export, opset 17, dynamic batch and sequence),
  run with intra_op_num_threads=N, inter_op_num_threads=1 and all graph
  optimisations; tokenisation by the same Hugging Face fast tokenizer
  that sentence-transformers uses (padding to the batch's longest).
- ricci: `ricci embed --json --repeat R` with RICCI_NUM_THREADS=N; the
  binary times each embedding call itself, so process start and model
  loading are excluded, as they are for the other two.
The script also checks that the three engines' embeddings agree
(cosine > 0.9999), so that it never times a wrong answer.
"""

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SHORT = "A man is eating food."
WORDS = (
    "model tensor gradient layer attention token embedding vector matrix rank "
    "sentence semantic search cluster river mountain quickly carefully bright "
    "ancient library museum window coffee morning evening thunder quiet ocean "
    "garden orchestra violin engine bicycle harbour lantern meadow winter summer"
).split()


def make_texts(tokenizer, n=32, tokens=128, seed=0):
    """n texts of exactly `tokens` tokens (specials included)."""
    rng = np.random.default_rng(seed)
    # Only words that are one word piece, so that n words make n + 2 tokens.
    words_1 = [w for w in WORDS if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]
    texts = []
    for _ in range(n):
        words = []
        while True:
            words.append(words_1[rng.integers(len(words_1))])
            count = len(tokenizer(" ".join(words))["input_ids"])
            if count >= tokens:
                break
        text = " ".join(words)
        assert len(tokenizer(text)["input_ids"]) == tokens, "words are single tokens"
        texts.append(text)
    return texts


def median_time(f, reps):
    f()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_torch(model, texts, reps):
    import torch

    with torch.inference_mode():
        run = lambda t: model.encode(t, batch_size=32, convert_to_numpy=True)
        batch_s = median_time(lambda: run(texts), reps)
        short_s = median_time(lambda: run([SHORT]), reps * 5)
        return batch_s, short_s, run(texts), run([SHORT])


def export_onnx(model, path):
    import torch

    bert = model[0].auto_model.eval()

    class Embed(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)[0]
            m = attention_mask.unsqueeze(-1).to(out.dtype)
            pooled = (out * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    f = model.tokenize(["hello world", "a longer second sentence"])
    args = (f["input_ids"], f["attention_mask"], f["token_type_ids"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["embedding"] = {0: "batch"}
    kwargs = dict(input_names=names, output_names=["embedding"], dynamic_axes=axes, opset_version=17)
    try:
        torch.onnx.export(Embed(bert), args, path, dynamo=False, **kwargs)
    except TypeError:  # older torch: no dynamo argument
        torch.onnx.export(Embed(bert), args, path, **kwargs)


def bench_onnx(model, path, texts, threads, reps):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    tok = model.tokenizer

    def run(t):
        f = tok(t, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="np")
        feeds = {k: f[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        return sess.run(None, feeds)[0]

    batch_s = median_time(lambda: run(texts), reps)
    short_s = median_time(lambda: run([SHORT]), reps * 5)
    return batch_s, short_s, run(texts), run([SHORT])


def bench_ricci(binary, model_dir, texts, threads, reps):
    env = dict(os.environ, RICCI_NUM_THREADS=str(threads))

    def run(t, repeat):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write("\n".join(t) + "\n")
            name = f.name
        try:
            out = subprocess.run(
                [binary, "embed", "--model", model_dir, "--input", name, "--json",
                 "--batch-size", "32", "--repeat", str(repeat)],
                env=env, check=True, capture_output=True, text=True,
            ).stdout
        finally:
            os.unlink(name)
        return json.loads(out)

    batch = run(texts, reps + 1)
    short = run([SHORT], reps * 5 + 1)
    return (batch["median_s"], short["median_s"], np.asarray(batch["embeddings"]),
            np.asarray(short["embeddings"]))


def agree(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "all-MiniLM-L6-v2"))
    ap.add_argument("--ricci", default=os.path.join(ROOT, "target", "release", "ricci"))
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = ap.parse_args()

    import onnxruntime
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(args.model, device="cpu")
    texts = make_texts(model.tokenizer)

    results = {}
    results["PyTorch (sentence-transformers)"] = bench_torch(model, texts, args.reps)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "minilm.onnx")
        export_onnx(model, path)
        results["onnxruntime"] = bench_onnx(model, path, texts, args.threads, args.reps)
    results["ricci"] = bench_ricci(args.ricci, args.model, texts, args.threads, args.reps)

    ref_batch, ref_short = results["PyTorch (sentence-transformers)"][2:]
    print(f"all-MiniLM-L6-v2, {args.threads} threads, median of {args.reps} runs "
          f"(torch {torch.__version__}, sentence-transformers {sentence_transformers.__version__}, "
          f"onnxruntime {onnxruntime.__version__})\n")
    print("| engine | batch of 32 x 128 tokens: sentences/s | one short text: ms | min cosine vs PyTorch |")
    print("|---|---:|---:|---:|")
    rows = []
    for name, (batch_s, short_s, emb, emb_short) in results.items():
        cos = min(agree(emb, ref_batch), agree(emb_short, ref_short))
        assert cos > 0.9999, f"{name} disagrees with PyTorch: cosine {cos}"
        rows.append({"engine": name, "sentences_per_s": 32 / batch_s, "short_ms": short_s * 1e3,
                     "min_cosine": cos})
        print(f"| {name} | {32 / batch_s:.1f} | {short_s * 1e3:.2f} | {cos:.7f} |")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
