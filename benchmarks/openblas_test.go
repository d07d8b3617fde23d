//go:build openblas && cgo

package benchmarks

import "github.com/dpopt/dpopt/linalg"

// With the openblas tag, every benchmark runs with OpenBLAS installed as the
// float64 BLAS and LAPACK: the Float64 products (Gram, MulXWt, MulRtX) call
// its Dsyrk and Dgemm per row block, EigenSym and ProjectPSD its Dsyevd (and
// Dsyrk), NewCholesky its Dpotrf and Dpocon and Cholesky.Solve its Dtrsm,
// and BenchmarkDsyrk times OpenBLAS's Dsyrk. The Float32 products run
// linalg's own kernels either way (see linalg.UseOpenBLAS).
func init() { linalg.UseOpenBLAS() }
