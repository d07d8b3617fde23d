//go:build openblas && cgo

package benchmarks

import "github.com/dpopt/dpopt/linalg"

// With the openblas tag, every benchmark runs on OpenBLAS: Gram calls its
// Dsyrk per row block, and BenchmarkDsyrk times OpenBLAS's Dsyrk.
func init() { linalg.UseOpenBLAS() }
