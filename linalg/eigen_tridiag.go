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
// The update of step k is fused with the product A₂₂·v of step k+1: the
// column that defines step k+1's reflector is updated first, and then one
// pass over the trailing lower triangle updates each entry and accumulates
// the product from it while it is in a register, so the triangle is read and
// written once per step. Row i of the pass is an axpy-like sweep over
// w[i*d+k+2 : i*d+i], which tridiagRow does (in assembly where available).
// The trailing rows are cut into a number of chunks that depends on the
// size alone; each chunk scatters its column sums into its own vector and
// the vectors are added in chunk order, so the result does not depend on
// how many goroutines run the chunks.
//
// v_k is kept in row k of the unused upper triangle (w[k*d+i], i > k+1;
// w[k*d+k+1] = 1) for the formation of Q = H_0·H_1·…·H_{d−3}.

// tridiagChunkMin is the trailing size from which a step's pass is split
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
	// Pending update (vPrev, wPrev) from the previous step, indexed by
	// global row; zero before the first step.
	vPrev := make([]float64, d)
	wPrev := make([]float64, d)
	vCur := make([]float64, d)
	p := make([]float64, d)
	part := make([][]float64, tridiagChunks)
	for c := range part {
		part[c] = make([]float64, d)
	}
	for k := 0; k < d-2; k++ {
		// Bring column k (rows k…d−1) up to date.
		for i := k; i < d; i++ {
			w[i*d+k] -= vPrev[i]*wPrev[k] + wPrev[i]*vPrev[k]
		}
		diag[k] = w[k*d+k]
		// Reflector from x = w[k+1:, k].
		beta, t := tridiagHouseholder(w, d, k, vCur)
		off[k] = beta
		tau[k] = t
		row := w[k*d : (k+1)*d]
		copy(row[k+1:], vCur[k+1:])

		// Fused pass: rows k+1…d−1, columns k+1…row.
		clear(p[k+1:])
		tridiagPass(w, d, k+1, vPrev, wPrev, vCur, p, part, workers, useAsm)

		// w = τ·p − (τ/2)(τ·pᵀv)·v; the next pending update is (v, w).
		vPrev, vCur = vCur, vPrev
		var pv float64
		for i := k + 1; i < d; i++ {
			p[i] *= t
			pv += p[i] * vPrev[i]
		}
		h := 0.5 * t * pv
		for i := k + 1; i < d; i++ {
			wPrev[i] = p[i] - h*vPrev[i]
		}
		vPrev[k], wPrev[k] = 0, 0
	}
	// The last 2×2 block.
	k := d - 2
	for i := k; i < d; i++ {
		for j := k; j <= i; j++ {
			w[i*d+j] -= vPrev[i]*wPrev[j] + wPrev[i]*vPrev[j]
		}
	}
	diag[k] = w[k*d+k]
	off[k] = w[(k+1)*d+k]
	diag[k+1] = w[(k+1)*d+k+1]
}

// tridiagHouseholder builds the reflector of step k from x = w[k+1:, k]:
// it returns β and τ with (I − τ·v·vᵀ)·x = β·e₁, and stores v (v[k+1] = 1)
// in v[k+1:]. When the entries below x[0] are negligible (their norm below
// 2⁻⁹⁰⁰, against entries of order 1), τ = 0 and β = x[0].
func tridiagHouseholder(w []float64, d, k int, v []float64) (beta, tau float64) {
	alpha := w[(k+1)*d+k]
	scale := 0.0
	for i := k + 2; i < d; i++ {
		scale = max(scale, math.Abs(w[i*d+k]))
	}
	v[k+1] = 1
	if scale == 0 {
		clear(v[k+2:])
		return alpha, 0
	}
	// ‖x[1:]‖ with the entries scaled by their maximum, so no square
	// underflows or overflows.
	var ss float64
	inv := 1 / scale
	for i := k + 2; i < d; i++ {
		t := w[i*d+k] * inv
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
	for i := k + 2; i < d; i++ {
		v[i] = w[i*d+k] * f
	}
	return beta, tau
}

// tridiagPass applies the pending update (vp, wp) to rows and columns
// k0…d−1 of the lower triangle of w and sets p[k0:] = A₂₂·vn for the updated
// block A₂₂. part holds tridiagChunks scratch vectors of length d.
func tridiagPass(w []float64, d, k0 int, vp, wp, vn, p []float64, part [][]float64, workers int, useAsm bool) {
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
		for i := r0; i < r1; i++ {
			row := w[i*d : i*d+i+1]
			vi, wi, vni := vp[i], wp[i], vn[i]
			dot := tridiagRow(useAsm, row[k0:i], vp[k0:i], wp[k0:i], vn[k0:i], pp[k0:i], vi, wi, vni)
			x := row[i] - 2*vi*wi
			row[i] = x
			pp[i] += dot + x*vni
		}
	}
	if chunks == 1 || workers <= 1 {
		for c := range chunks {
			run(c)
		}
	} else {
		parallelFor(chunks, workers, run)
	}
	for c := range chunks {
		r1 := bounds[c+1]
		for j, v := range part[c][k0:r1] {
			p[k0+j] += v
		}
	}
}

// tridiagRow is the inner loop of tridiagPass over one row segment:
//
//	for j: x = a[j] − vi·w[j] − wi·v[j]; a[j] = x; dot += x·vn[j]; pp[j] += x·vni
//
// and returns dot. The assembly version fuses the multiply-adds and sums dot
// in four lanes, so the two agree to rounding, not bit for bit.
func tridiagRow(useAsm bool, a, v, w, vn, pp []float64, vi, wi, vni float64) float64 {
	if useAsm {
		return tridiagRowAsm(a, v, w, vn, pp, vi, wi, vni)
	}
	return tridiagRowGo(a, v, w, vn, pp, vi, wi, vni)
}

// tridiagRowGo is the pure-Go tridiagRow.
func tridiagRowGo(a, v, w, vn, pp []float64, vi, wi, vni float64) float64 {
	n := len(a)
	v, w, vn, pp = v[:n], w[:n], vn[:n], pp[:n]
	var d0, d1 float64
	j := 0
	for ; j+1 < n; j += 2 {
		x0 := a[j] - vi*w[j] - wi*v[j]
		x1 := a[j+1] - vi*w[j+1] - wi*v[j+1]
		a[j], a[j+1] = x0, x1
		d0 += x0 * vn[j]
		d1 += x1 * vn[j+1]
		pp[j] += x0 * vni
		pp[j+1] += x1 * vni
	}
	if j < n {
		x := a[j] - vi*w[j] - wi*v[j]
		a[j] = x
		d0 += x * vn[j]
		pp[j] += x * vni
	}
	return d0 + d1
}

// tridiagFormQ overwrites q (d×d, row-major) with Q = H_0·H_1·…·H_{d−3},
// the reflectors stored in the upper triangle of w by tridiagReduce. The
// reflectors are accumulated backwards in blocks of tridiagNB as
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
	const nb = tridiagNB
	yt := make([]float64, nb*d)
	wk := make([]float64, nb*d)
	t := make([]float64, nb*nb)
	tmp := make([]float64, nb)
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
		// T: T[j][j] = τ_j, T[0:j, j] = −τ_j·T[0:j, 0:j]·(Yᵀy_j)[0:j].
		for j := range b {
			tj := tau[k0+j]
			yj := y[j*m : (j+1)*m]
			for i := range j {
				var s float64
				yi := y[i*m : (i+1)*m]
				for r := j; r < m; r++ { // y_j is zero above row j
					s += yi[r] * yj[r]
				}
				tmp[i] = s
			}
			for i := range j {
				var s float64
				for l := i; l < j; l++ {
					s += t[i*nb+l] * tmp[l]
				}
				t[i*nb+j] = -tj * s
			}
			t[j*nb+j] = tj
		}
		// W = Yᵀ·Q₂₂ (b×m), then W ← −T·W, then Q₂₂ += Y·W.
		q22 := q[(k0+1)*d+k0+1:]
		wb := wk[:b*m]
		clear(wb)
		dgemm(b, m, m, y, m, 1, q22, d, 1, wb, m, false, workers, useAsm)
		for i := range b {
			wi := wb[i*m : (i+1)*m]
			for c := range wi {
				s := 0.0
				for l := i; l < b; l++ {
					s += t[i*nb+l] * wb[l*m+c]
				}
				wi[c] = -s
			}
		}
		dgemm(m, m, b, y, 1, m, wb, m, 1, q22, d, false, workers, useAsm)
	}
}

// tridiagNB is the number of reflectors per block in tridiagFormQ.
const tridiagNB = 32
