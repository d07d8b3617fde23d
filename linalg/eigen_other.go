//go:build !amd64 || purego

package linalg

// rotPanels3Asm is never called when gemmHasAsm is false.
func rotPanels3Asm(z []float64, stride, top int, c, s []float64) {
	panic("linalg: internal: no assembly rotation kernel in this build")
}

// tridiagRow2Asm is never called when gemmHasAsm is false.
func tridiagRow2Asm(a0, a1, v, pp []float64, v0, v1 float64) (d0, d1 float64) {
	panic("linalg: internal: no assembly tridiagonalisation kernel in this build")
}
