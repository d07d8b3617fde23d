package dp

import (
	"fmt"
	"math"

	"github.com/dpopt/dpopt/linalg"
)

// ClipRows clips every row of x in place to L2 norm at most clip:
// x̃_i = x_i·min(1, clip/‖x_i‖), with norms computed in float64. It returns
// the norms ‖x_i‖ before clipping (the clip factors are ClipFactors of them).
//
// Because the scaled row is rounded to float32, a clipped row's norm could
// exceed clip by a rounding error; ClipRows then shrinks the row by a few
// float32 ulps until its float64-computed norm is at most clip, so the bound
// ‖x̃_i‖ ≤ clip behind every sensitivity in this package holds for the data
// actually released. Rows of norm at most clip are left untouched.
//
// It returns a *ParamError if clip is not positive and finite, and an error
// wrapping linalg.ErrEmpty, ErrShape or ErrNonFinite (from x.Check) for bad
// data; x is then unchanged.
func ClipRows(x *linalg.Matrix32, clip float64) ([]float64, error) {
	if err := checkPositive("ClipNorm", clip); err != nil {
		return nil, err
	}
	if x == nil || x.Rows <= 0 || x.Cols <= 0 || len(x.Data) != x.Rows*x.Cols {
		return nil, fmt.Errorf("dp: clip rows: %w", x.Check())
	}
	// First the norms, which also check the entries: x is unchanged on error.
	norms := make([]float64, x.Rows)
	for i := range x.Rows {
		s := sumSquares32(x.Row(i))
		// s ≤ 1e60 = MaxAbs² implies every entry is finite and at most MaxAbs
		// in magnitude; otherwise (NaN, ±Inf, or a large row) check the row.
		if !(s <= linalg.MaxAbs*linalg.MaxAbs) {
			row := &linalg.Matrix32{Rows: 1, Cols: x.Cols, Data: x.Row(i)}
			if row.Check() != nil {
				return nil, fmt.Errorf("dp: clip rows: %w", x.Check())
			}
		}
		norms[i] = math.Sqrt(s)
	}
	for i, n := range norms {
		if n <= clip {
			continue
		}
		row := x.Row(i)
		f := clip / n
		for j, v := range row {
			row[j] = float32(float64(v) * f)
		}
		// Shrink by 2^-22 (2 to 4 float32 ulps) until rounding no longer
		// pushes the norm above clip; at most a couple of rounds in practice.
		for iter := 0; norm32(row) > clip; iter++ {
			if iter == 64 {
				panic("dp: internal: clipped row does not shrink")
			}
			for j, v := range row {
				row[j] = float32(float64(v) * (1 - 0x1p-22))
			}
		}
	}
	return norms, nil
}

// norm32 returns the L2 norm of a float32 vector, accumulated in float64.
// Entries are at most linalg.MaxAbs = 1e30, so squares do not overflow.
func norm32(x []float32) float64 { return math.Sqrt(sumSquares32(x)) }

// sumSquares32 returns Σ x_j² in float64, in four interleaved partial sums
// (x_j is added to sum j mod 4, and the sums are added as (s0+s1)+(s2+s3)),
// which lets the additions overlap. The squares of float32 values are exact
// in float64; the error is that of float64 summation.
func sumSquares32(x []float32) float64 {
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		v := x[j : j+4 : j+4]
		a, b, c, d := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for k, v := range x[j:] {
		f := float64(v)
		switch k {
		case 0:
			s0 += f * f
		case 1:
			s1 += f * f
		default:
			s2 += f * f
		}
	}
	return (s0 + s1) + (s2 + s3)
}

// ClipFactors returns the clip factors c_i = min(1, clip/norms[i]) (1 for a
// zero norm), written into dst if it has the length of norms and into a new
// slice if dst is nil. Scaling an example of norm norms[i] by c_i bounds its
// norm by clip.
//
// It returns a *ParamError if clip is not positive and finite, and an error
// wrapping linalg.ErrShape if dst is neither nil nor of len(norms), or
// linalg.ErrNonFinite if a norm is negative, NaN or +Inf.
func ClipFactors(dst, norms []float64, clip float64) ([]float64, error) {
	if err := checkPositive("ClipNorm", clip); err != nil {
		return nil, err
	}
	dst, err := factorsDst(dst, len(norms))
	if err != nil {
		return nil, err
	}
	for i, n := range norms {
		if !(n >= 0) || math.IsInf(n, 1) {
			return nil, fmt.Errorf("dp: clip factors: norm %d = %v: %w", i, n, linalg.ErrNonFinite)
		}
	}
	for i, n := range norms {
		dst[i] = clipFactor(n, clip)
	}
	return dst, nil
}

// LinearClipFactors returns the per-example gradient clip factors of a linear
// layer, c_i = min(1, clip/(‖r_i‖·‖x_i‖)), where the per-example gradient is
// the outer product g_i = r_i x_iᵀ of the residual r_i (K values) and the
// features x_i, so that ‖g_i‖_F = ‖r_i‖·‖x_i‖. The clipped gradient sum
// (c∘R)ᵀX then has add/remove-one L2 sensitivity clip (see
// GradientSumSensitivity), without materialising any per-example gradient.
// Results go to dst as in ClipFactors.
//
// Errors are as for ClipFactors, with ErrShape also when residualNorms and
// featureNorms differ in length.
func LinearClipFactors(dst, residualNorms, featureNorms []float64, clip float64) ([]float64, error) {
	if len(residualNorms) != len(featureNorms) {
		return nil, fmt.Errorf("dp: linear clip factors: %d residual norms, %d feature norms: %w",
			len(residualNorms), len(featureNorms), linalg.ErrShape)
	}
	if err := checkPositive("ClipNorm", clip); err != nil {
		return nil, err
	}
	dst, err := factorsDst(dst, len(featureNorms))
	if err != nil {
		return nil, err
	}
	for _, norms := range [][]float64{residualNorms, featureNorms} {
		for i, n := range norms {
			if !(n >= 0) || math.IsInf(n, 1) {
				return nil, fmt.Errorf("dp: linear clip factors: norm %d = %v: %w", i, n, linalg.ErrNonFinite)
			}
		}
	}
	for i := range dst {
		// The product of two finite norms can overflow to +Inf; the factor is
		// then 0, which still bounds the clipped norm.
		dst[i] = clipFactor(residualNorms[i]*featureNorms[i], clip)
	}
	return dst, nil
}

// clipFactor returns min(1, clip/n), nudged down so that n·factor ≤ clip in
// float64.
func clipFactor(n, clip float64) float64 {
	if n <= clip {
		return 1
	}
	f := clip / n
	for f*n > clip {
		f = math.Nextafter(f, 0)
	}
	return f
}

func factorsDst(dst []float64, n int) ([]float64, error) {
	if dst == nil {
		return make([]float64, n), nil
	}
	if len(dst) != n {
		return nil, fmt.Errorf("dp: clip factors: len(dst) = %d, want %d: %w", len(dst), n, linalg.ErrShape)
	}
	return dst, nil
}
