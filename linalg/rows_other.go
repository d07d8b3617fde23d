//go:build !amd64 || purego

package linalg

// rowsPrefetch does nothing in this build: Go has no portable prefetch, and
// the hardware's own prefetchers serve the pure-Go kernels.
func rowsPrefetch(row []float32) {}

// rowsConv64 is gemmConvGo: this build has no assembly.
func rowsConv64(_ bool, dst []float64, src []float32) (float64, bool) { return gemmConvGo(dst, src) }

// rowsConv32 is gemm32ConvGo: this build has no assembly.
func rowsConv32(_ bool, dst, src []float32) (float64, bool) { return gemm32ConvGo(dst, src) }
