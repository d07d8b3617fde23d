//go:build openblas && cgo

package linalg

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"

	"github.com/dpopt/dpopt/linalg/internal/lapack"
	_ "github.com/dpopt/dpopt/linalg/internal/openblaslink" // -lopenblas
)

// UseOpenBLAS installs OpenBLAS as the float64 BLAS and LAPACK of the whole
// program. Its BLAS, through gonum.org/v1/netlib's cgo bindings, becomes the
// blas64 implementation: gonum's mat and lapack64, and linalg's Float64
// products (Gram, AddGram, Stats.Add with Precision Float64, MulXWt,
// MulRtX), CG's Dsymm, the triangular solves of Cholesky.Solve and the
// reconstruction in ProjectPSD (Dsyrk) then run on it. Its LAPACK, called
// through linalg/internal/lapack, takes over the symmetric
// eigendecomposition of EigenSym and ProjectPSD (Dsyevd, divide and
// conquer, as numpy's eigh; in place of linalg's own Householder and QL
// kernels, about twice as fast at d = 768 on this project's 2-core AVX2
// machine) and the factorisation of NewCholesky and CholeskySolve (Dpotrf,
// and Dpocon for the condition estimate, in place of gonum's). Errors and
// their types, the ordering of eigenvalues and the accuracy bounds are the
// same either way; results then are as reproducible as OpenBLAS is.
//
// The Float32 products (GramPrecision, MulXWtPrecision, MulRtXPrecision and
// the solvers' default) stay on linalg's own kernels: on this machine they
// took 0.41–0.42 CPU-s for XᵀX at n = 50 000, d = 768 against 0.50–0.58
// for OpenBLAS 0.3.21's Ssyrk per block, and 0.15 against 0.30 CPU-s for a
// full-batch gradient step at the MNIST shape (benchmarks/README.md), so
// UseOpenBLAS leaves blas32 alone. Installing a float32 BLAS explicitly
// (blas32.Use) makes the Float32 products call its Ssyrk and Sgemm instead.
//
// A library never does this by itself; call it once at the start of main,
// before any concurrent use of gonum:
//
//	func main() {
//		linalg.UseOpenBLAS()
//		…
//	}
//
// UseOpenBLAS exists only in builds with the openblas tag, which need cgo and
// the OpenBLAS library and headers (Debian/Ubuntu: apt-get install
// libopenblas-dev), and link with -lopenblas:
//
//	go build -tags openblas ./...
//
// OpenBLAS runs its own threads (OPENBLAS_NUM_THREADS); the workers argument
// of the Float64 products then only sets how many goroutines convert rows to
// float64. Idle OpenBLAS threads spin for a while after each call, which
// costs CPU while Go code runs between calls; OPENBLAS_THREAD_TIMEOUT=4 in
// the environment (read when OpenBLAS starts) made DP-LS 10–30 % faster
// here. It has a price in LAPACK, whose many small BLAS calls then wake the
// threads each time: ProjectPSD at d = 768 took 0.125–0.14 s with it and
// 0.09–0.11 s without on a lightly loaded machine (numpy's eigh and
// reconstruction: 0.09–0.12 s), though 0.15–0.18 s with it and 0.16–0.22 s
// without when other processes kept both cores busy. Calling blas64.Use
// with gonum.Implementation{} switches back to pure Go, LAPACK routines
// included.
func UseOpenBLAS() {
	blas64.Use(netlib.Implementation{})
	lapackInstalled.Store(&lapackBackend{
		maxDim: lapack.MaxDim,
		dsyevd: lapack.Dsyevd,
		dpotrf: lapack.Dpotrf,
		dpocon: lapack.Dpocon,
	})
}
