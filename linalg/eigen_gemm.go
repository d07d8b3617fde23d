package linalg

// Which part of the product dgemm computes.
const (
	triFull  = iota // all of C
	triUpper        // the tiles meeting the upper triangle
	triLower        // the tiles meeting the lower triangle
)

// dgemmKC is the summed dimension's chunk in dgemm: a 12-column panel of
// dgemmKC rows of B (24 KiB) stays in L1 while the row tiles pass.
const dgemmKC = 256

// dgemm adds A·B to C, where C is m×n (entry (i, j) at c[i*ldc+j]), A is m×k
// (entry (i, r) at a[i*ia+r*sa]) and B is k×n (entry (r, j) at
// b[r*rb+j*cb]), with the 4×12 tile kernel of MulXWt. With tri = triUpper
// (triLower), only the register tiles that meet the upper (lower) triangle,
// j ≥ i (j ≤ i), are computed, and the entries of C strictly below (above)
// the diagonal are unspecified.
//
// The k products of each entry are summed in chunks of dgemmKC, each chunk
// from zero in order and added to C in chunk order; the columns of C are
// split among workers goroutines in panels of 12, each entry computed by one
// goroutine. The result is therefore bit-identical for every workers count.
func dgemm(m, n, k int, a []float64, ia, sa int, b []float64, rb, cb int, c []float64, ldc int, tri int, workers int, useAsm bool) {
	if m <= 0 || n <= 0 || k <= 0 {
		return
	}
	np := (n + gemmNR - 1) / gemmNR
	nw := max(1, min(workers, np))
	pp := min(8, max(1, np/(4*nw))) // panels per task
	tasks := (np + pp - 1) / pp
	kcMax := min(dgemmKC, k)
	parallelFor(tasks, nw, func(t int) {
		p0 := t * pp
		p1 := min(p0+pp, np)
		pack := make([]float64, (p1-p0)*gemmNR*kcMax)
		var apad [gemmMR * dgemmKC]float64
		var tile [gemmMR * gemmNR]float64
		for r0 := 0; r0 < k; r0 += dgemmKC {
			kb := min(dgemmKC, k-r0)
			// Pack rows r0…r0+kb of B, columns of panels p0…p1−1.
			for q := range p1 - p0 {
				j0 := (p0 + q) * gemmNR
				nc := min(gemmNR, n-j0)
				dst := pack[q*gemmNR*kb : (q+1)*gemmNR*kb]
				for r := range kb {
					out := dst[r*gemmNR : (r+1)*gemmNR]
					src := b[(r0+r)*rb+j0*cb:]
					if cb == 1 {
						copy(out, src[:nc])
					} else {
						for j := range nc {
							out[j] = src[j*cb]
						}
					}
					clear(out[nc:])
				}
			}
			i0 := 0
			if tri == triLower {
				i0 = max(0, p0*gemmNR-gemmMR+1) / gemmMR * gemmMR
			}
			for ; i0 < m; i0 += gemmMR {
				if tri == triUpper && p1*gemmNR-1 < i0 {
					break
				}
				ar, ai, as := a[i0*ia+r0*sa:], ia, sa
				full := i0+gemmMR <= m
				if !full {
					clear(apad[:])
					for i := range m - i0 {
						for r := range kb {
							apad[r*gemmMR+i] = a[(i0+i)*ia+(r0+r)*sa]
						}
					}
					ar, ai, as = apad[:], 1, gemmMR
				}
				for q := range p1 - p0 {
					j0 := (p0 + q) * gemmNR
					if tri == triUpper && j0+gemmNR-1 < i0 || tri == triLower && j0 > i0+gemmMR-1 {
						continue
					}
					bp := pack[q*gemmNR*kb : (q+1)*gemmNR*kb]
					if full && j0+gemmNR <= n {
						gemmKernel(useAsm, kb, ar, ai, as, bp, c[i0*ldc+j0:], ldc)
						continue
					}
					clear(tile[:])
					gemmKernel(useAsm, kb, ar, ai, as, bp, tile[:], gemmNR)
					for i := range min(gemmMR, m-i0) {
						row := c[(i0+i)*ldc+j0:]
						for j := range min(gemmNR, n-j0) {
							row[j] += tile[i*gemmNR+j]
						}
					}
				}
			}
		}
	})
}
