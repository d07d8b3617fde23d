package linalg

import "math"

// Householder reduction of a symmetric matrix to tridiagonal form,
// A = Q·T·Qᵀ, and the explicit formation of Q.
//
// The matrix is held in a d×d row-major work array w of which only the
// lower triangle (w[i*d+j], j ≤ i) is read and written. Step k (k < d−2)
// builds the reflector H_k = I − τ_k·v·vᵀ, v[k+1] = 1, v[i] = 0 for i ≤ k,
// that zeroes column k below the subdiagonal, and applies it on both sides
// of the trailing block as the rank-2 update
//
//	A₂₂ ← A₂₂ − v·wᵀ − w·vᵀ,  p = τ·A₂₂·v,  w = p − (τ/2)(pᵀv)·v.
//
// As in LAPACK's Dsytrd and Dlatrd, the updates of a panel of tridiagNB
// steps are deferred: within the panel, the current trailing matrix is
// A − V·Wᵀ − W·Vᵀ with A as it was at the start of the panel and V, W the
// panel's vectors so far, so each step reads A once (read only) for the
// product A₂₂·v, in tridiagSymv, and corrects it with the panel's vectors;
// after the panel, the trailing lower triangle gets the rank-2·tridiagNB
// update with two matrix products (the GEMM tile kernel). The product A₂₂·v
// cuts the trailing rows into a number of chunks that depends on the size
// alone; each chunk scatters its column sums into its own vector and the
// vectors are added in chunk order, so the result does not depend on how
// many goroutines run the chunks.
//
// v_k is kept in row k of the unused upper triangle (w[k*d+i], i > k+1;
// w[k*d+k+1] = 1) for the formation of Q = H_0·H_1·…·H_{d−3}.

// tridiagChunkMin is the trailing size from which a product A₂₂·v is split
// into tridiagChunks chunks of rows.
const (
	tridiagChunkMin = 192
	tridiagChunks   = 8
)

// tridiagReduce reduces the symmetric matrix held in the lower triangle of w
// (d×d, row-major) to tridiagonal form: diag gets the d diagonal entries,
// off the d−1 subdiagonal ones, tau the d−2 reflector scalars, and the
// reflector vectors are left in the upper triangle of w as described above.
// The entries of w should be at most about 1 in magnitude (the caller
// scales), so that nothing overflows or underflows harmfully.
func tridiagReduce(w []float64, d int, diag, off, tau []float64, workers int, useAsm bool) {
	if d == 1 {
		diag[0] = w[0]
		return
	}
	const nb = tridiagNB
	nr := d - 2
	// vw[t*d:] is V's column t, vw[(nb+t)*d:] W's, by global row; wneg is −W.
	vw := make([]float64, 2*nb*d)
	wneg := make([]float64, nb*d)
	x := make([]float64, d)
	p := make([]float64, d)
	part := make([][]float64, tridiagChunks)
	for c := range part {
		part[c] = make([]float64, d)
	}
	col := func(t int) []float64 { return vw[t*d : (t+1)*d] }
	for k0 := 0; k0 < nr; k0 += nb {
		k1 := min(k0+nb, nr)
		for jj, k := 0, k0; k < k1; jj, k = jj+1, k+1 {
			// Column k (rows k…d−1) as it stands after the panel's steps so far.
			for i := k; i < d; i++ {
				x[i] = w[i*d+k]
			}
			for t := range jj {
				vt, wt := col(t), col(nb+t)
				tridiagAxpy2(x[k:], vt[k:], wt[k:], -wt[k], -vt[k])
			}
			diag[k] = x[k]
			v := col(jj)
			clear(v[:k+1])
			beta, tk := tridiagHouseholder(x, k, v)
			off[k] = beta
			tau[k] = tk
			copy(w[k*d+k+1:(k+1)*d], v[k+1:])

			// p = (A₂₂ − V·Wᵀ − W·Vᵀ)·v on rows k+1…d−1.
			tridiagSymv(w, d, k+1, v, p, part, workers, useAsm)
			for t := range jj {
				vt, wt := col(t), col(nb+t)
				alpha := tridiagDot(wt[k+1:], v[k+1:])
				gamma := tridiagDot(vt[k+1:], v[k+1:])
				tridiagAxpy2(p[k+1:], vt[k+1:], wt[k+1:], -alpha, -gamma)
			}
			// w = τ·p − (τ/2)(τ·pᵀv)·v.
			wv := col(nb + jj)
			clear(wv[:k+1])
			var pv float64
			for i := k + 1; i < d; i++ {
				p[i] *= tk
				pv += p[i] * v[i]
			}
			h := 0.5 * tk * pv
			for i := k + 1; i < d; i++ {
				wv[i] = p[i] - h*v[i]
			}
		}
		// Trailing lower triangle, rows and columns k1…d−1:
		// A₂₂ += V·(−W)ᵀ + (−W)·Vᵀ.
		b := k1 - k0
		m2 := d - k1
		for t := range b {
			for i, y := range col(nb + t)[k1:] {
				wneg[t*d+k1+i] = -y
			}
		}
		c := w[k1*d+k1:]
		dgemm(m2, m2, b, vw[k1:], 1, d, wneg[k1:], d, 1, c, d, triLower, workers, useAsm)
		dgemm(m2, m2, b, wneg[k1:], 1, d, vw[k1:], d, 1, c, d, triLower, workers, useAsm)
	}
	diag[d-2] = w[(d-2)*d+d-2]
	off[d-2] = w[(d-1)*d+d-2]
	diag[d-1] = w[(d-1)*d+d-1]
}

// tridiagAxpy2 sets y[i] += a·u[i] + b·v[i] for i < len(y).
func tridiagAxpy2(y, u, v []float64, a, b float64) {
	u, v = u[:len(y)], v[:len(y)]
	for i := range y {
		y[i] += a*u[i] + b*v[i]
	}
}

// tridiagDot returns Σ u[i]·v[i] over i < len(u).
func tridiagDot(u, v []float64) float64 {
	v = v[:len(u)]
	var s0, s1 float64
	i := 0
	for ; i+1 < len(u); i += 2 {
		s0 += u[i] * v[i]
		s1 += u[i+1] * v[i+1]
	}
	if i < len(u) {
		s0 += u[i] * v[i]
	}
	return s0 + s1
}

// tridiagHouseholder builds the reflector of step k from x[k+1:]: it returns
// β and τ with (I − τ·v·vᵀ)·x[k+1:] = β·e₁, and stores v (v[k+1] = 1) in
// v[k+1:]. When the entries below x[k+1] are negligible (their norm below
// 2⁻⁹⁰⁰, against entries of order 1), τ = 0 and β = x[k+1].
func tridiagHouseholder(x []float64, k int, v []float64) (beta, tau float64) {
	alpha := x[k+1]
	rest := x[k+2:]
	scale := 0.0
	for _, y := range rest {
		scale = max(scale, math.Abs(y))
	}
	v[k+1] = 1
	if scale == 0 {
		clear(v[k+2:])
		return alpha, 0
	}
	// ‖x[k+2:]‖ with the entries scaled by their maximum, so no square
	// underflows or overflows.
	var ss float64
	inv := 1 / scale
	for _, y := range rest {
		t := y * inv
		ss += t * t
	}
	xnorm := scale * math.Sqrt(ss)
	if xnorm < 0x1p-900 {
		clear(v[k+2:])
		return alpha, 0
	}
	beta = -math.Copysign(math.Hypot(alpha, xnorm), alpha)
	tau = (beta - alpha) / beta
	f := 1 / (alpha - beta)
	for i, y := range rest {
		v[k+2+i] = y * f
	}
	return beta, tau
}

// tridiagSymv sets p[k0:] = A·v[k0:] for the symmetric matrix A held in
// the lower triangle of rows and columns k0…d−1 of w. part holds
// tridiagChunks scratch vectors of length d.
func tridiagSymv(w []float64, d, k0 int, v, p []float64, part [][]float64, workers int, useAsm bool) {
	m := d - k0
	chunks := 1
	if m >= tridiagChunkMin {
		chunks = tridiagChunks
	}
	// Chunk c covers rows [bounds[c], bounds[c+1]) with about equal areas of
	// the triangle: row r of the block has r+1 entries.
	var bounds [tridiagChunks + 1]int
	bounds[0] = k0
	for c := 1; c < chunks; c++ {
		r := int(math.Sqrt(float64(c)/float64(chunks)) * float64(m))
		bounds[c] = max(bounds[c-1], k0+r)
	}
	bounds[chunks] = d
	run := func(c int) {
		r0, r1 := bounds[c], bounds[c+1]
		pp := part[c]
		clear(pp[k0:r1])
		for i := r0; i < r1; i += 2 {
			a0 := w[i*d : i*d+i+1]
			if i+1 == r1 {
				d0, _ := tridiagRow2(useAsm, a0[k0:i], a0[k0:i], v[k0:i], pp[k0:i], v[i], 0)
				pp[i] += d0 + a0[i]*v[i]
				continue
			}
			a1 := w[(i+1)*d : (i+1)*d+i+2]
			d0, d1 := tridiagRow2(useAsm, a0[k0:i], a1[k0:i], v[k0:i], pp[k0:i], v[i], v[i+1])
			x := a1[i]
			pp[i] += (d0 + a0[i]*v[i]) + x*v[i+1]
			pp[i+1] += (d1 + x*v[i]) + a1[i+1]*v[i+1]
		}
	}
	if chunks == 1 || workers <= 1 {
		for c := range chunks {
			run(c)
		}
	} else {
		parallelFor(chunks, workers, run)
	}
	clear(p[k0:])
	for c := range chunks {
		r1 := bounds[c+1]
		for j, y := range part[c][k0:r1] {
			p[k0+j] += y
		}
	}
}

// tridiagRow2 is the inner loop of tridiagSymv over two rows a0 and a1 of
// the lower triangle, both restricted to the same columns:
//
//	for j: d0 += a0[j]·v[j]; d1 += a1[j]·v[j]; pp[j] += a0[j]·v0 + a1[j]·v1
//
// The assembly version fuses the multiply-adds and sums the dot products in
// eight lanes, so the two agree to rounding, not bit for bit.
func tridiagRow2(useAsm bool, a0, a1, v, pp []float64, v0, v1 float64) (d0, d1 float64) {
	if useAsm {
		return tridiagRow2Asm(a0, a1, v, pp, v0, v1)
	}
	return tridiagRow2Go(a0, a1, v, pp, v0, v1)
}

// tridiagRow2Go is the pure-Go tridiagRow2.
func tridiagRow2Go(a0, a1, v, pp []float64, v0, v1 float64) (d0, d1 float64) {
	n := len(a0)
	a1, v, pp = a1[:n], v[:n], pp[:n]
	for j, x0 := range a0 {
		x1 := a1[j]
		d0 += x0 * v[j]
		d1 += x1 * v[j]
		pp[j] += x0*v0 + x1*v1
	}
	return d0, d1
}

// tridiagFormQ overwrites q (d×d, row-major) with Q = H_0·H_1·…·H_{d−3},
// the reflectors stored in the upper triangle of w by tridiagReduce. The
// reflectors are accumulated backwards in blocks of formQNB as
// I − Y·T·Yᵀ (T upper triangular), each block applied to the trailing part
// of q with two matrix products.
func tridiagFormQ(q, w []float64, d int, tau []float64, workers int, useAsm bool) {
	clear(q)
	for i := range d {
		q[i*d+i] = 1
	}
	nr := d - 2
	if nr <= 0 {
		return
	}
	const nb = formQNB
	yt := make([]float64, nb*d)
	wk := make([]float64, nb*d)
	wt := make([]float64, nb*d)
	t := make([]float64, nb*nb)
	gram := make([]float64, nb*nb)
	for k0 := (nr - 1) / nb * nb; k0 >= 0; k0 -= nb {
		k1 := min(k0+nb, nr)
		b := k1 - k0
		m := d - k0 - 1 // rows k0+1…d−1
		// Yᵀ (b×m): row j is v_{k0+j} on rows k0+1…d−1.
		y := yt[:b*m]
		for j := range b {
			r := y[j*m : (j+1)*m]
			clear(r[:j])
			r[j] = 1
			copy(r[j+1:], w[(k0+j)*d+k0+j+2:(k0+j+1)*d])
		}
		// −T, with T[j][j] = τ_j and T[0:j, j] = −τ_j·T[0:j, 0:j]·(Yᵀy_j)[0:j],
		// from the upper triangle of YᵀY (b×b, row stride nb).
		clear(gram)
		dgemm(b, b, m, y, m, 1, y, 1, m, gram, nb, triUpper, workers, useAsm)
		clear(t)
		for j := range b {
			tj := tau[k0+j]
			for i := range j {
				var s float64
				for l := i; l < j; l++ {
					s += t[i*nb+l] * gram[l*nb+j]
				}
				t[i*nb+j] = -tj * s // (−T)[i][j] = −τ_j·Σ_l (−T)[i][l]·(yₗᵀy_j)
			}
			t[j*nb+j] = -tj
		}
		// W = Yᵀ·Q₂₂ (b×m), then W' = −T·W, then Q₂₂ += Y·W'.
		q22 := q[(k0+1)*d+k0+1:]
		wb := wk[:b*m]
		clear(wb)
		dgemm(b, m, m, y, m, 1, q22, d, 1, wb, m, triFull, workers, useAsm)
		w2 := wt[:b*m]
		clear(w2)
		dgemm(b, m, b, t, nb, 1, wb, m, 1, w2, m, triFull, workers, useAsm)
		dgemm(m, m, b, y, 1, m, w2, m, 1, q22, d, triFull, workers, useAsm)
	}
}

// tridiagNB is the number of steps per panel in tridiagReduce (the work of
// a step's correction grows with it), and formQNB the number of reflectors
// per block in tridiagFormQ: the tile kernel runs at about 17 GFLOP/s with
// a summed dimension of 32 and 28 GFLOP/s with 64 (m = n = 1280).
const (
	tridiagNB = 32
	formQNB   = 64
)
