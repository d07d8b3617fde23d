//go:build openblas && cgo

package linalg

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"

	_ "github.com/dpopt/dpopt/linalg/internal/openblaslink" // -lopenblas
)

// UseOpenBLAS installs OpenBLAS, through gonum.org/v1/netlib's cgo bindings,
// as the blas64 and blas32 implementation of the whole program: gonum's mat and lapack64
// and linalg's Gram, AddGram, Stats.Add, Cholesky and CG then run on it
// (EigenSym and ProjectPSD are linalg's own kernels either way). A library never does this by itself; call it once at the start of
// main, before any concurrent use of gonum:
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
// of Gram then only decides whether the float64 accumulation of one block
// overlaps with the next block's Ssyrk (workers > 1). Gram then computes
// each block of rows in float32 (Ssyrk), as numpy's X.T @ X does from
// float32, and adds the blocks in float64; see Gram for the error this
// costs. Idle OpenBLAS threads spin for a while after each call, which costs
// CPU while Go code runs between calls; OPENBLAS_THREAD_TIMEOUT=4 in the
// environment (read when OpenBLAS starts) made DP-LS 10–30 % faster here. Calling
// blas64.Use with gonum.Implementation{} switches back to pure Go.
func UseOpenBLAS() {
	blas64.Use(netlib.Implementation{})
	blas32.Use(netlib.Implementation{})
}
