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

// tridiagRow2AVX2 is the vector part of tridiagRow2Asm: n is a multiple of
// 8. Each dot product is summed in eight lanes (two 4-wide accumulators, for
// j ≡ 0…3 and 4…7 mod 8), combined as ((a0+b0)+(a2+b2))+((a1+b1)+(a3+b3)).
//
//go:noescape
func tridiagRow2AVX2(a0, a1, v, pp *float64, n int, v0, v1 float64) (d0, d1 float64)

// tridiagRow2Asm is tridiagRow2 with the assembly loop for the multiples of
// 8 and a scalar tail.
func tridiagRow2Asm(a0, a1, v, pp []float64, v0, v1 float64) (d0, d1 float64) {
	n := len(a0)
	a1, v, pp = a1[:n], v[:n], pp[:n]
	n8 := n &^ 7
	if n8 > 0 {
		d0, d1 = tridiagRow2AVX2(&a0[0], &a1[0], &v[0], &pp[0], n8, v0, v1)
	}
	for j := n8; j < n; j++ {
		x0, x1 := a0[j], a1[j]
		d0 += x0 * v[j]
		d1 += x1 * v[j]
		pp[j] += x0*v0 + x1*v1
	}
	return d0, d1
}
