#!/usr/bin/python3
"""numpy / OpenBLAS reference for the steps of benchmarks/steps_test.go.

Adapted from ../shared/bench/numpy_reference.py: the same float32 features,
the same step definitions as the issue's table, one process per OpenBLAS
setting, median of --reps timed repetitions after one warm-up, wall time and
process CPU time (all threads) for each, the 1-minute load average at the start
and end of each step. Run it back to back with the Go benchmarks:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 \\
        /usr/bin/python3 benchmarks/numpy_reference.py --shapes mnist,cifar100 --reps 5

Prints one JSON document (results, threadpoolctl info, load) on stdout and a
summary table on stderr. Shapes and inputs match steps_test.go: X uniform in
[-1, 1)/sqrt(d), float32, C-contiguous; labels uniform in [0, K).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg.blas import ssyrk
from scipy.special import expit, log_expit

SHAPES = {
    "mnist": (60000, 784, 10),
    "cifar100": (50000, 768, 100),
    "imagenet": (200000, 1280, 1000),  # extrapolate n-linear steps by 1281167/200000
}
ROW_BLOCK = 8192
f32 = np.float32


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def bench(fn, reps):
    fn()  # warm-up
    wall, cpu = [], []
    l0 = load1()
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return dict(median_s=statistics.median(wall), min_s=min(wall), wall_s=wall,
                cpu_s_median=statistics.median(cpu), load1=[l0, load1()])


def data(n, d, K, seed=0):
    rng = np.random.default_rng(seed)
    X = ((rng.random((n, d), dtype=f32) * 2 - 1) / f32(np.sqrt(d))).astype(f32)
    y = rng.integers(0, K, n)
    return X, y


def xtx(X):
    """X^T X: float32 ssyrk per 8192-row block, float64 accumulation."""
    n, d = X.shape
    acc = np.zeros((d, d))
    c = np.zeros((d, d), f32, order="F")
    for i in range(0, n, ROW_BLOCK):
        r = ssyrk(1.0, X[i:i + ROW_BLOCK].T, beta=0.0, c=c, overwrite_c=1)
        acc += r
    return acc  # upper triangle


def xty(X, y, K):
    """per-class sums (X^T Y) by scatter-add: CSR one-hot^T @ X, float32."""
    n = X.shape[0]
    S = sp.csr_matrix((np.ones(n, f32), (y, np.arange(n))), shape=(K, n))
    return S @ X


def sym_noise(rng, d, sigma):
    E = np.triu(rng.standard_normal((d, d)))
    E += np.triu(E, 1).T                # off-diagonal N(0, 1) as drawn; scale below
    E *= sigma
    return E


def psd(A):
    w, V = sla.eigh(A, check_finite=False, driver="evd")
    return (V * np.maximum(w, 0.0)) @ V.T


def chol_solve(A, B):
    return sla.cho_solve(sla.cho_factor(A, lower=True, check_finite=False), B, check_finite=False)


def grad_step(X, y, W, xn, Cg, Z, G, ar):
    """one full-batch clipped-gradient step, one-vs-all sigmoid, fixed bias -10:
    scores (sgemm), residuals, ||g_i|| = ||r_i|| ||x_i||, clip, (c.R)^T X (sgemm)."""
    np.matmul(X, W, out=Z)
    Z += f32(-10)
    expit(Z, out=Z)
    Z[ar, y] -= 1
    rn = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    Z *= np.minimum(f32(1), Cg / np.maximum(rn * xn, f32(1e-30)))[:, None]
    np.matmul(Z.T, X, out=G)


def dpls(X, y, K, C, rng):
    """DP-LS end to end: clip rows to C, X^T X (ssyrk blocks, f64 acc), X^T Y,
    symmetric noise on the Gram, Gaussian noise on X^T Y, PSD projection,
    ridge, Cholesky solve with K right-hand sides."""
    n, d = X.shape
    nrm = np.sqrt(np.einsum("ij,ij->i", X, X))
    Xc = X * np.minimum(f32(1), f32(C) / np.maximum(nrm, f32(1e-30)))[:, None]
    G = xtx(Xc)
    G = np.triu(G) + np.triu(G, 1).T
    B = xty(Xc, y, K).T.astype(np.float64)
    sigma = 5.0  # the noise scale does not change the time
    G += sym_noise(rng, d, sigma * C * C)
    B += sigma * C * rng.standard_normal(B.shape)
    Gp = psd(G)
    Gp[np.diag_indices(d)] += 1e-3 * n * C * C / d + np.sqrt(2 * d) * sigma * C * C
    return chol_solve(Gp, B)


def dpfc(X, y, K, C, Cg, rng, steps=10, eta=10.0):
    """DP-FC end to end: clip rows to C, X^T X (ssyrk blocks, f64 acc),
    symmetric noise, PSD projection, ridge, Cholesky factor once, then per
    step one full-batch clipped-gradient step of grad_step (float32 sgemm,
    per-example norms ||r_i|| ||x_i||), Gaussian noise and a preconditioned
    solve with K right-hand sides (float64)."""
    n, d = X.shape
    nrm = np.sqrt(np.einsum("ij,ij->i", X, X))
    Xc = X * np.minimum(f32(1), f32(C) / np.maximum(nrm, f32(1e-30)))[:, None]
    xn = np.sqrt(np.einsum("ij,ij->i", Xc, Xc))
    G = xtx(Xc)
    G = np.triu(G) + np.triu(G, 1).T
    sigma = 5.0  # the noise scale does not change the time
    G += sym_noise(rng, d, sigma * C * C)
    Gp = psd(G)
    Gp[np.diag_indices(d)] += 1e-3 * n * C * C / d + np.sqrt(2 * d) * sigma * C * C
    cf = sla.cho_factor(Gp, lower=True, check_finite=False)
    W = np.zeros((d, K), f32)
    Z = np.empty((n, K), f32)
    Gr = np.empty((K, d), f32)
    ar = np.arange(n)
    for _ in range(steps):
        grad_step(Xc, y, W, xn, f32(Cg), Z, Gr, ar)
        g = Gr.astype(np.float64) + sigma * Cg * rng.standard_normal((K, d))
        W -= (eta * sla.cho_solve(cf, g.T, check_finite=False)).astype(f32)
    return W


def per_example(Xb, yb, W, Cg, chunk):
    """naive: materialise the B x K x d per-example gradients, norms, clipped sum."""
    Bn = Xb.shape[0]
    Z = Xb @ W - f32(10)
    expit(Z, out=Z)
    Z[np.arange(Bn), yb] -= 1
    K, d = W.shape[1], Xb.shape[1]
    G = np.zeros((K, d), f32)
    g = np.empty((chunk, K, d), f32)
    for s in range(0, Bn, chunk):
        gb = g[:min(chunk, Bn - s)]
        np.multiply(Z[s:s + chunk, :, None], Xb[s:s + chunk, None, :], out=gb)
        nrm = np.sqrt(np.einsum("bkd,bkd->b", gb, gb))
        c = np.minimum(f32(1), Cg / np.maximum(nrm, f32(1e-30)))
        G += np.tensordot(c, gb, axes=(0, 0))
    return G


def identity(Xb, yb, W, Cg, xnb):
    Bn = Xb.shape[0]
    Z = Xb @ W - f32(10)
    expit(Z, out=Z)
    Z[np.arange(Bn), yb] -= 1
    rn = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    Z *= np.minimum(f32(1), Cg / np.maximum(rn * xnb, f32(1e-30)))[:, None]
    return Z.T @ Xb


def run(name, reps, steps):
    n, d, K = SHAPES[name]
    X, y = data(n, d, K)
    rng = np.random.default_rng(1)
    out = {}
    log = lambda m: print(f"[{name}] {m}", file=sys.stderr, flush=True)
    if "xtx" in steps:
        log("xtx")
        out["xtx"] = bench(lambda: xtx(X), reps)
    if "xtx32" in steps:
        log("xtx32")
        out["xtx32"] = bench(lambda: X.T @ X, reps)  # plain float32 sgemm, full d x d
    if "xty" in steps:
        log("xty")
        out["xty"] = bench(lambda: xty(X, y, K), reps)
    if "stats" in steps:
        log("stats")
        out["stats"] = bench(lambda: (xtx(X), xty(X, y, K)), reps)
    if "eigh" in steps or "chol" in steps:
        Xs = X[:20000]
        A = xtx(Xs)
        A = np.triu(A) + np.triu(A, 1).T
        A += sym_noise(rng, d, 1e-3 * np.trace(A) / d)
        if "eigh" in steps:
            log("eigh+psd")
            out["eigh"] = bench(lambda: psd(A), reps)
        Ap = psd(A)
        Ap[np.diag_indices(d)] += 1e-2 * np.trace(Ap) / d
        Bm = rng.standard_normal((d, K))
        if "chol" in steps:
            log("cholesky+solve")
            out["chol"] = bench(lambda: chol_solve(Ap, Bm), reps)
    if "step" in steps:
        log("grad step")
        W = (0.01 * rng.standard_normal((d, K))).astype(f32)
        xn = np.sqrt(np.einsum("ij,ij->i", X, X))   # fixed features: once, as numpy users do
        Z = np.empty((n, K), f32)
        G = np.empty((K, d), f32)
        ar = np.arange(n)
        np.matmul(X, W, out=Z)
        Z += f32(-10)
        expit(Z, out=Z)
        Z[ar, y] -= 1
        Cg = f32(np.median(np.sqrt(np.einsum("ij,ij->i", Z, Z)) * xn))
        out["step"] = bench(lambda: grad_step(X, y, W, xn, Cg, Z, G, ar), reps)
    if "perex" in steps and name != "imagenet":
        log("per-example")
        Bn = 1024
        W = (0.01 * rng.standard_normal((d, K))).astype(f32)
        Xb, yb = X[:Bn], y[:Bn]
        xnb = np.sqrt(np.einsum("ij,ij->i", Xb, Xb))
        chunk = Bn
        while chunk * K * d * 4 > (64 << 20):
            chunk //= 2
        Cg = f32(0.5)
        out["perex_materialised"] = bench(lambda: per_example(Xb, yb, W.T.copy().T, Cg, chunk), reps)
        out["perex_identity"] = bench(lambda: identity(Xb, yb, W, Cg, xnb), reps)
    if "dpls" in steps:
        log("dp-ls")
        out["dpls"] = bench(lambda: dpls(X, y, K, 0.5, rng), reps)
    if "dpfc" in steps:
        log("dp-fc")
        out["dpfc"] = bench(lambda: dpfc(X, y, K, 0.5, 1.0, rng), reps)
    return out


def eigh_dims(dims, reps):
    """np.linalg.eigh (LAPACK dsyevd: values and vectors) and eigh + PSD
    reconstruction of the noisy covariance of BenchmarkEigenSym in
    eigen_test.go: X^T X of min(4d, 20000) rows plus symmetric noise of
    sigma = 1e-3 trace/d."""
    out = {}
    for d in dims:
        X, _ = data(min(4 * d, 20000), d, 10)
        A = xtx(X)
        A = np.triu(A) + np.triu(A, 1).T
        A += sym_noise(np.random.default_rng(1), d, 1e-3 * np.trace(A) / d)
        print(f"[eigh] d={d}", file=sys.stderr, flush=True)
        out[f"eigh/d={d}"] = bench(lambda: np.linalg.eigh(A), reps)
        out[f"eigh+psd/d={d}"] = bench(lambda: psd(A), reps)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="mnist,cifar100")
    ap.add_argument("--steps", default="xtx,xty,stats,eigh,chol,step,perex,dpls,dpfc")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--eigh-dims", default="",
                    help="also time np.linalg.eigh at these sizes, e.g. 768,1280,2048")
    args = ap.parse_args()
    info = {"numpy": np.__version__, "env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}}
    try:
        from threadpoolctl import threadpool_info
        info["threadpoolctl"] = threadpool_info()
    except Exception as e:
        info["threadpoolctl_error"] = repr(e)
    res = {"info": info, "shapes": {}}
    for s in args.shapes.split(","):
        res["shapes"][s] = run(s, args.reps, args.steps.split(","))
        for k, v in res["shapes"][s].items():
            print(f"{s:9s} {k:20s} median {v['median_s']:.4f} s  min {v['min_s']:.4f} s  "
                  f"cpu {v['cpu_s_median']:.4f} s  load {v['load1'][0]:.1f}->{v['load1'][1]:.1f}",
                  file=sys.stderr, flush=True)
    if args.eigh_dims:
        res["eigh_dims"] = eigh_dims([int(d) for d in args.eigh_dims.split(",")], args.reps)
        for k, v in res["eigh_dims"].items():
            print(f"{k:20s} median {v['median_s']:.4f} s  min {v['min_s']:.4f} s  "
                  f"cpu {v['cpu_s_median']:.4f} s  load {v['load1'][0]:.1f}->{v['load1'][1]:.1f}",
                  file=sys.stderr, flush=True)
    json.dump(res, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
