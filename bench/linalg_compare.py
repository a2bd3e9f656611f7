"""numpy references for the rows of `ricci bench --filter linalg`.

Imported by bench/compare.py (its worker calls `linalg_row` for rows named
linalg_*), so the timing method, thread pinning and table are compare.py's.
What a numpy user would write for each row:

  linalg_svd            np.linalg.svd(a, full_matrices=False)     (gesdd)
  linalg_qr             np.linalg.qr(a)                           (geqrf + orgqr)
  linalg_eigh           np.linalg.eigh(a)                         (syevd)
  linalg_cholesky       np.linalg.cholesky(spd), spd = a aᵀ/n + I built outside the timing
  linalg_solve          np.linalg.solve(a, b)                     (gesv)
  linalg_svd_full       np.linalg.svd(a, full_matrices=False) at 2000
  linalg_rsvd_rank10    the same randomized SVD written in numpy (HMT, p = 10, q = 2, QR re-orthonormalisation)
  linalg_lanczos_top5   np.linalg.eigh of the same power-law matrix (numpy has no
                        Lanczos; scipy's eigsh would be the iterative reference)

GFLOP/s use the nominal counts documented in crates/ricci-cli/src/bench/linalg_rows.rs.
"""


def nominal_flops(name, n):
    return {
        "linalg_svd": 22.0 * n**3,
        "linalg_qr": 8.0 / 3.0 * n**3,
        "linalg_eigh": 9.0 * n**3,
        "linalg_cholesky": n**3 / 3.0,
        "linalg_solve": 2.0 / 3.0 * n**3 + 2.0 * n**2,
    }.get(name)


def rsvd(np, a, rank, oversample=10, power_iters=2, seed=0):
    rng = np.random.default_rng(seed)
    m, n = a.shape
    l = min(rank + oversample, m, n)
    omega = rng.standard_normal((n, l)).astype(a.dtype)
    q, _ = np.linalg.qr(a @ omega)
    for _ in range(power_iters):
        z, _ = np.linalg.qr(a.T @ q)
        q, _ = np.linalg.qr(a @ z)
    u, s, vt = np.linalg.svd(q.T @ a, full_matrices=False)
    return (q @ u)[:, :rank], s[:rank], vt[:rank]


def linalg_row(np, row, randn):
    """(fn, work_kind, work) for a linalg_* row, or None."""
    name, shape = row["name"], row["shape"]
    n = int(shape.split("+")[0].split("x")[0])
    a = randn(n, n)
    flops = nominal_flops(name, n)
    if name == "linalg_svd" or name == "linalg_svd_full":
        fn = lambda: np.linalg.svd(a, full_matrices=False)  # noqa: E731
    elif name == "linalg_qr":
        fn = lambda: np.linalg.qr(a)  # noqa: E731
    elif name == "linalg_eigh":
        fn = lambda: np.linalg.eigh(a)  # noqa: E731
    elif name == "linalg_cholesky":
        spd = a @ a.T / n + np.eye(n, dtype=a.dtype)
        fn = lambda: np.linalg.cholesky(spd)  # noqa: E731
    elif name == "linalg_solve":
        b = randn(n)
        fn = lambda: np.linalg.solve(a, b)  # noqa: E731
    elif name == "linalg_rsvd_rank10":
        fn = lambda: rsvd(np, a, 10)  # noqa: E731
    elif name == "linalg_lanczos_top5":
        q, _ = np.linalg.qr(a)
        sym = (q / np.arange(1, n + 1, dtype=a.dtype)) @ q.T
        fn = lambda: np.linalg.eigh(sym)  # noqa: E731
    else:
        return None
    if flops is None:
        return fn, "time", 0.0
    return fn, "gflops", flops
