//go:build amd64 && !purego

package losses

import "golang.org/x/sys/cpu"

// sigmoidRowAVX2 is sigmoidRowGo in AVX2/FMA assembly, four entries at a
// time, with bit-identical results. n ≥ 1; y is the label as a float64.
//
//go:noescape
func sigmoidRowAVX2(s, curv *float64, n int, y, alpha float64) (loss float64, ok bool)

// sigmoidHasAsm reports whether this CPU and OS support the assembly
// kernel: AVX2 and FMA, with the YMM state saved by the OS.
var sigmoidHasAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sigmoidRowAsm calls the assembly kernel on a non-empty row; curv has the
// row's length.
func sigmoidRowAsm(s, curv []float64, y int, alpha float64) (float64, bool) {
	_ = curv[len(s)-1]
	return sigmoidRowAVX2(&s[0], &curv[0], len(s), float64(y), alpha)
}
