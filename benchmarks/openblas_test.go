//go:build openblas && cgo

package benchmarks

import "github.com/dpopt/dpopt/linalg"

// With the openblas tag, every benchmark runs with OpenBLAS installed as the
// float64 BLAS: the Float64 products (Gram, MulXWt, MulRtX) call its Dsyrk
// and Dgemm per row block, Cholesky its LAPACK-level BLAS calls, and
// BenchmarkDsyrk times OpenBLAS's Dsyrk. The Float32 products run linalg's
// own kernels either way (see linalg.UseOpenBLAS).
func init() { linalg.UseOpenBLAS() }
