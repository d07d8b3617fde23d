//go:build !amd64 || purego

package linalg

// gramHasAsm is false: this build has no assembly kernel (not amd64, or the
// purego build tag is set).
const gramHasAsm = false

// gramKernelAsm is never called when gramHasAsm is false.
func gramKernelAsm(k int, a, b, c []float64, ldc int) {
	panic("linalg: internal: no assembly Gram kernel in this build")
}

// gramPackRowAsm is never called when gramHasAsm is false.
func gramPackRowAsm(dst []float64, row []float32, stride int) bool {
	panic("linalg: internal: no assembly Gram packing in this build")
}
