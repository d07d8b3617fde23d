package linalg

import (
	"errors"
	"fmt"
	"math"
)

// ErrInexact: quantised statistics (NewQuantizedStats) grew too large for
// float64 to hold their sums exactly.
var ErrInexact = errors.New("linalg: quantised statistics no longer exact")

// Quantisation limits: a quantum is a power of two in
// [2^quantumMinExp, 2^quantumMaxExp], so that quantised float32 entries
// and their float64 products (multiples of quantum²) are never subnormal.
const (
	quantumMinExp = -149
	quantumMaxExp = 100
	// MaxQuantizeBits is the largest number of bits Quantum accepts: with
	// more, 2⁵³·quantum² would fall below a few C², and statistics of a handful
	// of rows would already be inexact.
	MaxQuantizeBits = 24
)

// Quantum returns the quantisation step for rows of L2 norm at most c kept
// to bits bits: the largest power of two q ≤ c·2⁻ᵇⁱᵗˢ. Truncating every
// entry of such a row to a multiple of q (Quantize) moves it by less than q
// ≤ c·2⁻ᵇⁱᵗˢ per entry. It returns an error wrapping ErrParam if c is not
// positive and finite, bits is not in [1, MaxQuantizeBits], or q would
// fall outside [2⁻¹⁴⁹, 2¹⁰⁰].
func Quantum(c float64, bits int) (float64, error) {
	if !(c > 0) || math.IsInf(c, 1) {
		return 0, fmt.Errorf("linalg: quantisation of rows of norm %g, want positive and finite: %w", c, ErrParam)
	}
	if bits < 1 || bits > MaxQuantizeBits {
		return 0, fmt.Errorf("linalg: quantisation to %d bits, want [1, %d]: %w", bits, MaxQuantizeBits, ErrParam)
	}
	_, e := math.Frexp(c) // c = f·2^e, f in [0.5, 1): 2^(e−1) ≤ c < 2^e
	q := math.Ldexp(1, e-1-bits)
	if err := checkQuantum(q); err != nil {
		return 0, err
	}
	return q, nil
}

// checkQuantum reports a quantum that is not a power of two within the limits.
func checkQuantum(q float64) error {
	frac, e := math.Frexp(q)
	if frac != 0.5 || e-1 < quantumMinExp || e-1 > quantumMaxExp {
		return fmt.Errorf("linalg: quantum %g, want a power of two in [2^%d, 2^%d]: %w",
			q, quantumMinExp, quantumMaxExp, ErrParam)
	}
	return nil
}

// Quantize truncates every entry of x toward zero to a multiple of quantum
// (a power of two, see Quantum), in place: x_ij ← trunc(x_ij/q)·q. Each
// entry keeps its sign and does not grow in magnitude, so no row norm grows
// (a row clipped to C stays within C), and the map depends on nothing but
// the entry and q. NaN and ±Inf are left as they are. It returns an error
// wrapping ErrParam for an invalid quantum; x is then unchanged.
func Quantize(x *Matrix32, quantum float64) error {
	if err := checkQuantum(quantum); err != nil {
		return err
	}
	if x == nil {
		return nil
	}
	quantize(x.Data, quantum)
	return nil
}

// quantize truncates src to multiples of the power of two q. The division
// and the product by q are exact (q is a power of two and float32 values
// lie far from float64's limits), and the result has a subset of v's
// significand bits, so it is a float32 again.
func quantize(src []float32, q float64) {
	for i, v := range src {
		src[i] = float32(math.Trunc(float64(v)/q) * q)
	}
}

// NewQuantizedStats returns empty statistics for d features and k classes
// that truncate every entry of the rows they receive toward zero to a
// multiple of quantum (a power of two, see Quantum and Quantize) before
// accumulating them. The errors are those of NewStats, and ErrParam for an
// invalid quantum.
//
// # Exactness
//
// Every product of two quantised entries is an exact multiple of q² in
// float64, and every sum the Gram kernel, Add and Merge form is a sum over
// a subset of the rows: by Cauchy–Schwarz, at most √(G_ii·G_jj) ≤ max_i G_ii
// in magnitude. While every diagonal entry G_ii stays below 2⁵³·q², all
// these sums are multiples of q² that float64 represents exactly, so no
// addition rounds; the class sums (multiples of q, at most √(n·G_ii)) are
// exact too. Add and Merge check this after every step — a computed
// diagonal below 2⁵³·q² certifies that no rounding happened anywhere, as a
// rounded sum of non-negative terms can only land at or above it — and
// return an error wrapping ErrInexact, leaving s unchanged, if it fails.
// The limit is 2⁵³·q² ≥ 2⁵¹⁻²ᵇ·C² for q = Quantum(C, b): with b = 16 and
// rows clipped to C, 2¹⁹ C², against G_ii ≤ n·C² in the worst case (all of
// every row in one feature) and about n·C²/d when the rows spread their
// norm over the d features — hundreds of millions of rows at d = 1280.
//
// Exact sums make the statistics independent of how the rows are grouped:
// for the same rows, in any order, split into any Add calls, on any number
// of Stats merged in any order, with any Workers and Gram kernel, the
// result is the same to the bit — the exact statistics of the quantised
// rows. Quantised statistics compute their Gram with exact float64 products
// whatever their Precision field says (as Gram does; with an installed BLAS,
// see UseOpenBLAS, with its Dsyrk): Precision has no effect on them.
func NewQuantizedStats(d, k int, quantum float64) (*Stats, error) {
	if err := checkQuantum(quantum); err != nil {
		return nil, err
	}
	s, err := NewStats(d, k)
	if err != nil {
		return nil, err
	}
	s.quantum = quantum
	return s, nil
}

// Quantum returns the quantisation step of s, or 0 if s does not quantise
// (NewStats).
func (s *Stats) Quantum() float64 { return s.quantum }

// exactLimit is 2⁵³·q², the bound the Gram diagonal of quantised statistics
// must stay below.
func (s *Stats) exactLimit() float64 { return 0x1p53 * s.quantum * s.quantum }

// checkExact returns an error wrapping ErrInexact unless every diagonal
// entry of the Gram of s, plus that of o if o is not nil, is below the
// exactness limit (see NewQuantizedStats). s and o have the same shape.
func (s *Stats) checkExact(o *Stats) error {
	limit, d := s.exactLimit(), s.d
	for i := range d {
		v := s.gram[i*d+i]
		if o != nil {
			v += o.gram[i*d+i]
		}
		if !(v < limit) {
			return fmt.Errorf("linalg: quantised Gram diagonal entry %d reaches %g ≥ 2⁵³·q² = %g (q = %g): "+
				"float64 sums would round; quantise to fewer bits: %w", i, v, limit, s.quantum, ErrInexact)
		}
	}
	return nil
}

// addQuantized is Add for quantised statistics, after the checks of Add.
func (s *Stats) addQuantized(x *Matrix32, labels []int, workers int) error {
	if err := x.Check(); err != nil { // before truncation can hide a bad entry
		return err
	}
	xq := &Matrix32{Rows: x.Rows, Cols: x.Cols, Data: append([]float32(nil), x.Data...)}
	quantize(xq.Data, s.quantum)
	g, ldc, err := gramAccumulate(xq, workers, Float64) // exact products, whatever s.Precision says
	if err != nil {
		return err
	}
	t := &Stats{d: s.d, k: s.k, n: int64(x.Rows), quantum: s.quantum, gram: make([]float64, s.d*s.d)}
	for i := range s.d {
		copy(t.gram[i*s.d+i:(i+1)*s.d], g[i*ldc+i:i*ldc+s.d])
	}
	if err := t.checkExact(nil); err != nil {
		return err
	}
	if err := s.checkExact(t); err != nil {
		return err
	}
	if s.k > 0 {
		t.sums, t.counts = classSums(xq, labels, s.k, workers)
	}
	s.merge(t)
	return nil
}

// validateQuantized checks decoded quantised statistics: a valid quantum,
// Gram entries multiples of q² and class sums multiples of q, and the
// Gram diagonal below the exactness limit.
func (s *Stats) validateQuantized() error {
	if s.quantum == 0 {
		return nil
	}
	if err := checkQuantum(s.quantum); err != nil {
		return fmt.Errorf("linalg: %w: %w", ErrFormat, err)
	}
	q2 := s.quantum * s.quantum
	for i := range s.d {
		for j := i; j < s.d; j++ {
			if v := s.gram[i*s.d+j] / q2; v != math.Trunc(v) {
				return fmt.Errorf("linalg: quantised Gram entry (%d, %d) not a multiple of q² = %g: %w", i, j, q2, ErrFormat)
			}
		}
	}
	for i, v := range s.sums {
		if v /= s.quantum; v != math.Trunc(v) {
			return fmt.Errorf("linalg: quantised class sum (%d, %d) not a multiple of q = %g: %w", i/s.d, i%s.d, s.quantum, ErrFormat)
		}
	}
	if err := s.checkExact(nil); err != nil {
		return fmt.Errorf("linalg: %w: %w", ErrFormat, err)
	}
	return nil
}
