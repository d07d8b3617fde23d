//go:build amd64 && !purego

package linalg

// rotPanels3AVX2 is the AVX2/FMA version of rotPanels3 on three panels of
// 4 rows at z, z+stride and z+2·stride (stride in float64 values), for the
// n rotations i = top−1 … top−n with cosines at c and sines at s. n ≥ 1.
//
//go:noescape
func rotPanels3AVX2(z *float64, stride, top, n int, c, s *float64)

// rotPanels3Asm calls rotPanels3AVX2 on slices, checking their extent.
func rotPanels3Asm(z []float64, stride, top int, c, s []float64) {
	n := len(c)
	_ = s[n-1]
	_ = z[2*stride+4*top+3]
	_ = z[4*(top-n)]
	rotPanels3AVX2(&z[0], stride, top, n, &c[0], &s[0])
}

// tridiagRowAVX2 is the vector part of tridiagRowAsm: n is a multiple of 8.
// The dot product is summed in eight lanes (two 4-wide accumulators, for
// j ≡ 0…3 and 4…7 mod 8), combined as ((a0+b0)+(a2+b2))+((a1+b1)+(a3+b3)).
//
//go:noescape
func tridiagRowAVX2(a, v, w, vn, pp *float64, n int, vi, wi, vni float64) float64

// tridiagRowAsm is tridiagRow with the assembly loop for the multiples of 8
// and a scalar tail.
func tridiagRowAsm(a, v, w, vn, pp []float64, vi, wi, vni float64) float64 {
	n := len(a)
	v, w, vn, pp = v[:n], w[:n], vn[:n], pp[:n]
	n8 := n &^ 7
	var dot float64
	if n8 > 0 {
		dot = tridiagRowAVX2(&a[0], &v[0], &w[0], &vn[0], &pp[0], n8, vi, wi, vni)
	}
	for j := n8; j < n; j++ {
		x := a[j] - vi*w[j] - wi*v[j]
		a[j] = x
		dot += x * vn[j]
		pp[j] += x * vni
	}
	return dot
}
