//go:build !amd64 || purego

package linalg

// gram32HasAsm is false: this build has no assembly kernel (not amd64, or
// the purego build tag is set).
const gram32HasAsm = false

// gram32KernelAsm is never called when gram32HasAsm is false.
func gram32KernelAsm(k int, a, b []float32, c []float64, ldc int) {
	panic("linalg: internal: no assembly Float32 Gram kernel in this build")
}

// gram32PackPanelAsm is never called when gram32HasAsm is false.
func gram32PackPanelAsm(dst, dstA, src []float32, rows, ldx, strideA int) (bad, wide bool) {
	panic("linalg: internal: no assembly Float32 Gram packing in this build")
}
