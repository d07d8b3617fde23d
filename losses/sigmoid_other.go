//go:build !amd64 || purego

package losses

// sigmoidHasAsm is false: this build has no assembly kernel (not amd64, or
// the purego build tag is set); sigmoidRowVec runs sigmoidRowGo.
const sigmoidHasAsm = false

// sigmoidRowAsm is never called when sigmoidHasAsm is false.
func sigmoidRowAsm(s, curv []float64, y int, alpha float64) (float64, bool) {
	panic("losses: internal: no assembly sigmoid kernel in this build")
}
