//! Criterion benchmarks of ricci's kernels on named, realistic shapes.
//!
//! Throughput: matmul rows report `Throughput::Elements(2·m·k·n)`, so
//! criterion's "elem/s" reads as FLOP/s; memory-bound rows report
//! `Throughput::Bytes(bytes read + bytes written)`. Threads: rayon's global
//! pool, sized by `RICCI_NUM_THREADS` (default: all cores).
//!
//! Run: `cargo bench -p ricci --bench kernels [-- FILTER]`. For the
//! side-by-side numpy comparison use `ricci bench` and `bench/compare.py`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ricci::{DType, Rng, Tensor};

fn randn(shape: &[usize], rng: &mut Rng) -> Tensor {
    Tensor::randn(shape, DType::F32, rng)
}

/// Benchmarks `a · b` under `name`, counting 2·(batch)·m·k·n FLOPs.
fn bench_matmul(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, a: &Tensor, b: &Tensor) {
    let (ar, br) = (a.rank(), b.rank());
    let batch: usize = a.shape()[..ar.saturating_sub(2)].iter().product();
    let m = if ar >= 2 { a.shape()[ar - 2] } else { 1 };
    let k = a.shape()[ar - 1];
    let n = if br >= 2 { b.shape()[br - 1] } else { 1 };
    group.throughput(Throughput::Elements((2 * batch * m * k * n) as u64));
    group.bench_function(name, |bench| {
        bench.iter(|| black_box(a.matmul(b).expect("matmul shapes agree")))
    });
}

fn matmul(c: &mut Criterion) {
    let mut rng = Rng::new(0);
    let mut group = c.benchmark_group("matmul_f32");
    let a = randn(&[512, 512], &mut rng);
    bench_matmul(&mut group, "square_512", &a, &randn(&[512, 512], &mut rng));
    // GPT-2 small FFN up-projection over 4096 tokens (batch x seq).
    let x = randn(&[4096, 768], &mut rng);
    bench_matmul(
        &mut group,
        "ffn_up_4096x768x3072",
        &x,
        &randn(&[768, 3072], &mut rng),
    );
    // The same layer as `linear` computes it: weight stored [out, in], used as a view wᵀ.
    let w = randn(&[3072, 768], &mut rng);
    let wt = w.t().expect("2-d");
    bench_matmul(&mut group, "ffn_up_linear_wT_4096x768x3072", &x, &wt);
    // Attention scores: 64 (batch x heads) of q [128 x 64] · kᵀ [64 x 128].
    let q = randn(&[64, 128, 64], &mut rng);
    let kt = randn(&[64, 64, 128], &mut rng);
    bench_matmul(&mut group, "attention_scores_64x128x64x128", &q, &kt);
    // GEMV: one token through the FFN up-projection, w [3072 x 768] · x [768].
    let v = randn(&[768], &mut rng);
    bench_matmul(&mut group, "gemv_3072x768", &w, &v);
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    let n = 4096;
    let bytes = (n * n * 4) as u64;
    let x = randn(&[n, n], &mut rng);
    let bias = randn(&[n], &mut rng);
    let mut group = c.benchmark_group("elementwise_f32");
    group.throughput(Throughput::Bytes(2 * bytes));
    group.bench_function("gelu_16M", |b| b.iter(|| black_box(x.gelu())));
    group.bench_function("exp_16M", |b| b.iter(|| black_box(x.exp())));
    group.throughput(Throughput::Bytes(2 * bytes + (n * 4) as u64));
    group.bench_function("add_bias_4096x4096+4096", |b| {
        b.iter(|| black_box(x.add(&bias).expect("broadcastable")))
    });
    group.finish();
}

fn reductions(c: &mut Criterion) {
    let mut rng = Rng::new(2);
    let mut group = c.benchmark_group("reduce_f32");
    // Attention probabilities: softmax over keys of [64 x 128 x 128] scores.
    let scores = randn(&[64, 128, 128], &mut rng);
    group.throughput(Throughput::Bytes(2 * (scores.numel() * 4) as u64));
    group.bench_function("softmax_rows_attention_64x128x128", |b| {
        b.iter(|| black_box(scores.softmax(-1).expect("dim in range")))
    });
    // Logits over a 4096-wide vocabulary for 4096 tokens.
    let logits = randn(&[4096, 4096], &mut rng);
    group.throughput(Throughput::Bytes(2 * (logits.numel() * 4) as u64));
    group.bench_function("softmax_rows_4096x4096", |b| {
        b.iter(|| black_box(logits.softmax(-1).expect("dim in range")))
    });
    group.throughput(Throughput::Bytes(((logits.numel() + 4096) * 4) as u64));
    group.bench_function("sum_rows_4096x4096", |b| {
        b.iter(|| black_box(logits.sum(-1, false).expect("dim in range")))
    });
    group.finish();
}

fn config() -> Criterion {
    ricci::kernels::par::init_from_env();
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = kernels;
    config = config();
    targets = matmul, elementwise, reductions
}
criterion_main!(kernels);
