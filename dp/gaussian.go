package dp

import (
	"fmt"
	"math"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

// AddGaussian is the Gaussian mechanism on a vector: it adds independent
// N(0, sigma²) noise to every element of dst (dst is overwritten). sigma is a
// standard deviation. Released under add/remove-one adjacency, a statistic of
// L2 sensitivity Δ is then (ε, δ)-DP for δ = DeltaForGaussian(sigma, ε, Δ),
// i.e. μ-GDP with μ = Δ/sigma; Gaussian.Add calibrates sigma from Δ.
//
// If src implements GaussianAdder (the Sources from NewSecureSource and
// Harden do) the addition is delegated to it; otherwise the noise is
// sigma·z with z from src.Normal, drawn in the order of dst.
//
// It returns a *ParamError if sigma is not positive and finite, an error
// wrapping ErrNilSource for a nil src and one wrapping linalg.ErrNonFinite if
// dst holds a NaN or ±Inf; dst is then unchanged.
func AddGaussian(dst []float64, sigma float64, src Source) error {
	if err := checkGaussianArgs(dst, sigma, src); err != nil {
		return err
	}
	return addGaussian(dst, sigma, src)
}

// DrawNormals fills z with the N(0, 1) draws that AddGaussian(dst, sigma,
// src) adds, times sigma, to a dst of len(z) when src is not a
// GaussianAdder: the same calls of src.Normal in the same order, leaving src
// in the same state. With AddNormals it splits AddGaussian in two, so that a
// solver can draw the noise of a release before, or while, it computes the
// statistic, which the noise does not depend on:
//
//	DrawNormals(z, src) then AddNormals(dst, sigma, z)
//
// adds to dst exactly what AddGaussian(dst, sigma, src) adds, bit for bit,
// and the mechanism, its privacy and its randomness are AddGaussian's.
//
// A GaussianAdder (the Sources of NewSecureSource and Harden) adds hardened
// noise on a grid to dst's values rounded to it; that noise cannot be drawn
// apart from the values. DrawNormals returns a *ParamError for one, and an
// error wrapping ErrNilSource for a nil src; z is then unchanged.
func DrawNormals(z []float64, src Source) error {
	if src == nil {
		return fmt.Errorf("dp: normal draws: %w", ErrNilSource)
	}
	if _, ok := src.(GaussianAdder); ok {
		return paramError("src", 0, "a GaussianAdder's hardened noise cannot be drawn apart from the values it is added to; use AddGaussian")
	}
	if p, ok := src.(*plain); ok { // addGaussianPlain's draws: NormFloat64 in order
		p.Normal(z)
		return nil
	}
	for len(z) > 0 { // addGaussianPlain's calls: chunks of at most NormalsChunk
		n := min(len(z), addGaussianChunk)
		src.Normal(z[:n])
		z = z[n:]
	}
	return nil
}

// AddNormals adds sigma·z[i] to dst[i], for z drawn by DrawNormals: the
// second half of AddGaussian (see DrawNormals). sigma is a standard
// deviation. It returns a *ParamError if sigma is not positive and finite,
// and an error wrapping linalg.ErrShape if len(z) ≠ len(dst), or
// linalg.ErrNonFinite if dst holds a NaN or ±Inf; dst is then unchanged.
func AddNormals(dst []float64, sigma float64, z []float64) error {
	if len(z) != len(dst) {
		return fmt.Errorf("dp: %d normal draws for %d values: %w", len(z), len(dst), linalg.ErrShape)
	}
	if err := checkPositive("Sigma", sigma); err != nil {
		return err
	}
	for i, x := range dst {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("dp: gaussian noise: element %d = %v: %w", i, x, linalg.ErrNonFinite)
		}
	}
	for i, v := range z {
		dst[i] += sigma * v
	}
	return nil
}

// addGaussian dispatches checked arguments to the Source's own adder or to the
// plain path.
func addGaussian(dst []float64, sigma float64, src Source) error {
	if ga, ok := src.(GaussianAdder); ok {
		return ga.AddGaussian(dst, sigma)
	}
	addGaussianPlain(dst, sigma, src)
	return nil
}

// AddGaussianDense is the Gaussian mechanism on a general matrix: it adds
// independent N(0, sigma²) noise to every element of m, row by row (m is
// overwritten). Adjacency and sensitivity are as for AddGaussian, with the L2
// sensitivity taken in Frobenius norm (for example C for the per-class sums
// XᵀY; see SumSensitivity). Errors are as for AddGaussian, plus one wrapping
// linalg.ErrEmpty for a nil or empty m.
func AddGaussianDense(m *mat.Dense, sigma float64, src Source) error {
	if m == nil || m.IsEmpty() {
		return fmt.Errorf("dp: gaussian noise on empty matrix: %w", linalg.ErrEmpty)
	}
	raw := m.RawMatrix()
	rows := make([][]float64, raw.Rows)
	for i := range rows {
		rows[i] = raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
	}
	if err := checkGaussianArgs(nil, sigma, src); err != nil {
		return err
	}
	for i, r := range rows {
		if err := checkGaussianArgs(r, sigma, src); err != nil {
			return fmt.Errorf("dp: row %d: %w", i, err)
		}
	}
	for _, r := range rows {
		if err := addGaussian(r, sigma, src); err != nil {
			return err
		}
	}
	return nil
}

// AddGaussianSym is the Gaussian mechanism for a symmetric matrix such as a
// Gram matrix G = Σ x̃x̃ᵀ: it adds a symmetric noise matrix E with
// E_ii ~ N(0, sigma²) and E_ij = E_ji ~ N(0, sigma²/2) for i < j, one draw per
// pair, d(d+1)/2 draws in all, in row-major order of the upper triangle (row
// i: the diagonal entry, then the entries right of it). m is overwritten.
//
// E has the distribution of (F + Fᵀ)/2 for F with iid N(0, sigma²) entries,
// so releasing G + E is post-processing of releasing G + F: under
// add/remove-one adjacency its L2 (Frobenius) sensitivity is that of G — C²
// for a Gram of rows clipped to norm C (see GramSensitivity) — and it costs
// exactly the privacy of the Gaussian mechanism with std sigma, at half the
// samples. Projecting the result onto the PSD cone is further
// post-processing.
//
// Errors are as for AddGaussianDense.
func AddGaussianSym(m *mat.SymDense, sigma float64, src Source) error {
	if m == nil || m.IsEmpty() {
		return fmt.Errorf("dp: gaussian noise on empty matrix: %w", linalg.ErrEmpty)
	}
	raw := m.RawSymmetric() // upper triangle, row-major
	n := raw.N
	upper := func(i int) []float64 { return raw.Data[i*raw.Stride+i : i*raw.Stride+n] }
	if err := checkGaussianArgs(nil, sigma, src); err != nil {
		return err
	}
	for i := range n {
		if err := checkGaussianArgs(upper(i), sigma, src); err != nil {
			return fmt.Errorf("dp: row %d: %w", i, err)
		}
	}
	offSigma := sigma / math.Sqrt2
	for i := range n {
		row := upper(i)
		if err := addGaussian(row[:1], sigma, src); err != nil {
			return err
		}
		if len(row) > 1 {
			if err := addGaussian(row[1:], offSigma, src); err != nil {
				return err
			}
		}
	}
	return nil
}

// NormalDense fills dst with independent N(0, 1) draws from src.Normal, row
// by row (dst is overwritten). It returns an error wrapping ErrNilSource for a
// nil src and one wrapping linalg.ErrEmpty for a nil or empty dst.
func NormalDense(dst *mat.Dense, src Source) error {
	if dst == nil || dst.IsEmpty() {
		return fmt.Errorf("dp: normal fill of empty matrix: %w", linalg.ErrEmpty)
	}
	if src == nil {
		return fmt.Errorf("dp: normal fill: %w", ErrNilSource)
	}
	raw := dst.RawMatrix()
	for i := range raw.Rows {
		src.Normal(raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols])
	}
	return nil
}

// Gaussian is the Gaussian mechanism described by its L2 sensitivity and
// noise multiplier: it adds noise of standard deviation
// σ = NoiseMultiplier·Sensitivity. Under add/remove-one adjacency one release
// is μ-GDP with μ = 1/NoiseMultiplier, i.e. (ε, δ)-DP with
// δ = DeltaForGaussian(NoiseMultiplier, ε, 1). Both fields are required:
// zero is an error, not a default.
type Gaussian struct {
	Sensitivity     float64 // L2 sensitivity Δ of the released statistic (add/remove-one)
	NoiseMultiplier float64 // σ/Δ
}

// Sigma returns the standard deviation NoiseMultiplier·Sensitivity, or a
// *ParamError if either field is not positive and finite or the product
// overflows.
func (g Gaussian) Sigma() (float64, error) {
	if err := checkPositive("Sensitivity", g.Sensitivity); err != nil {
		return 0, err
	}
	if err := checkPositive("NoiseMultiplier", g.NoiseMultiplier); err != nil {
		return 0, err
	}
	s := g.NoiseMultiplier * g.Sensitivity
	if err := checkPositive("Sigma", s); err != nil {
		return 0, err
	}
	return s, nil
}

// Add adds N(0, σ²) noise to every element of dst, σ = g.Sigma(); see
// AddGaussian.
func (g Gaussian) Add(dst []float64, src Source) error {
	s, err := g.Sigma()
	if err != nil {
		return err
	}
	return AddGaussian(dst, s, src)
}

// AddDense adds N(0, σ²) noise to every element of m, σ = g.Sigma(); see
// AddGaussianDense.
func (g Gaussian) AddDense(m *mat.Dense, src Source) error {
	s, err := g.Sigma()
	if err != nil {
		return err
	}
	return AddGaussianDense(m, s, src)
}

// AddSym adds symmetric noise of diagonal variance σ² and off-diagonal
// variance σ²/2 to m, σ = g.Sigma(); see AddGaussianSym.
func (g Gaussian) AddSym(m *mat.SymDense, src Source) error {
	s, err := g.Sigma()
	if err != nil {
		return err
	}
	return AddGaussianSym(m, s, src)
}
