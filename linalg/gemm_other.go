//go:build !amd64 || purego

package linalg

// gemmHasAsm is false: this build has no assembly GEMM kernel (not amd64, or
// the purego build tag is set).
const gemmHasAsm = false

// gemmKernelAsm is never called when gemmHasAsm is false.
func gemmKernelAsm(k int, a []float64, ia, sa int, b, c []float64, ldc int) {
	panic("linalg: internal: no assembly GEMM kernel in this build")
}

// gemmConvAsm is never called when gemmHasAsm is false.
func gemmConvAsm(dst []float64, src []float32) (float64, bool) {
	panic("linalg: internal: no assembly GEMM conversion in this build")
}

// gemmPackAsm is never called when gemmHasAsm is false.
func gemmPackAsm(dst []float64, src []float32, rows, cols, ld, stride int) bool {
	panic("linalg: internal: no assembly GEMM packing in this build")
}
