//go:build !amd64 || purego

package linalg

// rotPanels3Asm is never called when gemmHasAsm is false.
func rotPanels3Asm(z []float64, stride, top int, c, s []float64) {
	panic("linalg: internal: no assembly rotation kernel in this build")
}

// tridiagRowAsm is never called when gemmHasAsm is false.
func tridiagRowAsm(a, v, w, vn, pp []float64, vi, wi, vni float64) float64 {
	panic("linalg: internal: no assembly tridiagonalisation kernel in this build")
}
