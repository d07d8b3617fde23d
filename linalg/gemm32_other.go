//go:build !amd64 || purego

package linalg

// gemm32KernelAsm is never called when gemmHasAsm is false.
func gemm32KernelAsm(k int, a []float32, ia, sa int, b []float32, ldb int, c []float64, ldc int) {
	panic("linalg: internal: no assembly float32 GEMM kernel in this build")
}

// gemm32ConvAsm is never called when gemmHasAsm is false.
func gemm32ConvAsm(dst, src []float32) (float64, bool) {
	panic("linalg: internal: no assembly float32 GEMM copy in this build")
}

// gemm32PackAsm is never called when gemmHasAsm is false.
func gemm32PackAsm(dst, src []float32, rows, cols, ld, stride int) bool {
	panic("linalg: internal: no assembly float32 GEMM packing in this build")
}
