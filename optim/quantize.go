package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/linalg"
)

// Quantisation of the clipped rows (the Quantize field of LS and FC).
//
// With Quantize = b > 0, every entry of every clipped row x̃ is truncated
// toward zero to a multiple of the power of two q = linalg.Quantum(C, b) ≤
// C·2⁻ᵇ, and the solver uses x̄ = trunc(x̃/q)·q wherever it used x̃. The map is
// deterministic, entry by entry and independent of the data set, and
// |x̄_j| ≤ |x̃_j|, so ‖x̄‖ ≤ C: the sensitivities, the releases and the
// privacy guarantee are unchanged. What it buys is exactness: the Gram and
// class sums of quantised rows are sums of multiples of q² (of q) that
// float64 holds exactly (linalg.NewQuantizedStats), so the statistics — and
// the DP-LS model for a given noise seed — are the same to the bit for the
// same rows however they are ordered, blocked (StreamData.BlockRows),
// threaded (Workers) or sharded across machines (package dpbeam).
//
// The cost is an error below q per entry: at b = 16 and C = 1, 2⁻¹⁶ ≈ 1.5e-5
// against entries of about 1/√d (0.03 at d = 1280), far below the noise of
// any private release; on digits, 16 bits leave every DP-LS and DP-FC test
// accuracy unchanged at ε = 1, 8 and ∞ (TestQuantizeAccuracy). Exactness holds while every Gram diagonal entry
// stays below 2⁵³·q² (2¹⁹·C² or more at b = 16; the diagonal sums to at most
// n·C², and to about n·C²/d per entry when the rows spread their norm):
// past it, the pass fails with an error wrapping linalg.ErrInexact, and a
// smaller b is needed (each bit less multiplies the limit by 4).
//
// Such a failure would depend on the data. So that it cannot happen, the
// solvers refuse, before reading any row, a b for which n rows clipped to C
// could reach the limit, n·C² ≥ 2⁵³·q² (at b = 16: n ≥ 2¹⁹ or more; b = 12
// allows 2²⁷ rows, b = 10 2³¹): a check of public sizes only. Only a stream
// of unknown length (StreamData.N = 0) relies on the check during the pass.

// checkQuantize checks the Quantize field.
func checkQuantize(bits int) error {
	if bits < 0 || bits > linalg.MaxQuantizeBits {
		return &accountant.ParamError{Param: "Quantize", Value: float64(bits),
			Reason: fmt.Sprintf("must be in [0, %d] bits (0 = no quantisation)", linalg.MaxQuantizeBits)}
	}
	return nil
}

// checkQuantizeRows refuses a quantisation of n rows clipped to c to bits
// bits whose exact sums could overflow 53 bits for some data set.
func checkQuantizeRows(c float64, bits, n int) error {
	q, err := quantum(c, bits)
	if err != nil || q == 0 {
		return err
	}
	if limit := math.Ldexp(q*q, 53) / (c * c); float64(n) >= limit {
		most := bits
		for most > 0 {
			most--
			if qq, err := quantum(c, most); err == nil && (qq == 0 || float64(n) < math.Ldexp(qq*qq, 53)/(c*c)) {
				break
			}
		}
		return &accountant.ParamError{Param: "Quantize", Value: float64(bits),
			Reason: fmt.Sprintf("%d rows clipped to %g could overflow the exact sums at %d bits; use at most %d", n, c, bits, most)}
	}
	return nil
}

// quantum returns the grid of rows clipped to c and quantised to bits bits,
// or 0 if bits is 0.
func quantum(c float64, bits int) (float64, error) {
	if bits == 0 {
		return 0, nil
	}
	q, err := linalg.Quantum(c, bits)
	if err != nil {
		return 0, fmt.Errorf("optim: Quantize: %w", err)
	}
	return q, nil
}

// quantizedRows returns a copy of d's features clipped to c (clipped) and
// quantised to bits bits (none if bits is 0), clipping on workers goroutines.
func quantizedRows(d *Data, c float64, bits, workers int) (*linalg.Matrix32, error) {
	if err := checkQuantizeRows(c, bits, d.X.Rows); err != nil {
		return nil, err
	}
	q, err := quantum(c, bits)
	if err != nil {
		return nil, err
	}
	x, err := clipped(d, c, workers)
	if err != nil || q == 0 {
		return x, err
	}
	if err := linalg.Quantize(x, q); err != nil {
		return nil, fmt.Errorf("optim: %w", err)
	}
	return x, nil
}

// newStats returns empty statistics, quantised to q if q > 0 (and then
// exact), else accumulated in precision prec.
func newStats(d, k int, q float64, prec linalg.Precision) (*linalg.Stats, error) {
	var s *linalg.Stats
	var err error
	if q > 0 {
		s, err = linalg.NewQuantizedStats(d, k, q)
	} else {
		s, err = linalg.NewStats(d, k)
	}
	if err != nil {
		return nil, fmt.Errorf("optim: %w", err)
	}
	if q == 0 {
		s.Precision = prec
	}
	return s, nil
}

// quantizedStats is clippedStats with the rows quantised to bits bits (none
// if bits is 0), after refusing a bits too fine for d's rows
// (checkQuantizeRows): the statistics are then exact and do not depend on
// the block size.
func quantizedStats(d *Data, c float64, bits int, prec linalg.Precision, workers int) (*linalg.Stats, error) {
	if err := checkQuantizeRows(c, bits, d.X.Rows); err != nil {
		return nil, err
	}
	q, err := quantum(c, bits)
	if err != nil {
		return nil, err
	}
	return clippedStats(d, c, q, prec, workers)
}

// gramSum accumulates the Gram of clipped rows block by block: with
// linalg.AddGramPrecision in precision prec, or, for rows quantised to q > 0,
// exactly in quantised statistics. The zero value with q set is ready to use.
type gramSum struct {
	q       float64
	prec    linalg.Precision
	workers int
	g       *mat.SymDense
	st      *linalg.Stats
}

// add adds the Gram of x's rows (already clipped, and quantised to q).
func (a *gramSum) add(x *linalg.Matrix32) error {
	if a.q == 0 {
		if a.g == nil {
			a.g = mat.NewSymDense(x.Cols, nil)
		}
		return linalg.AddGramPrecision(a.g, x, a.workers, a.prec)
	}
	if a.st == nil {
		st, err := newStats(x.Cols, 0, a.q, a.prec)
		if err != nil {
			return err
		}
		st.Workers = a.workers
		a.st = st
	}
	for i0 := 0; i0 < x.Rows; i0 += statsBlock { // Add copies its input: bound the copy
		if err := a.st.Add(x.Slice(i0, min(x.Rows, i0+statsBlock)), nil); err != nil {
			return err
		}
	}
	return nil
}

// addClassSums adds to row l of sums (K×d) the sum of the rows in byClass[l]
// (row-major float32 rows of d entries), in float64, in row order. Rows
// quantised to q sum exactly while the class sums stay below 2⁵³·q, which
// the row bound of checkQuantizeRows implies.
func addClassSums(sums *mat.Dense, byClass [][]float32) {
	raw := sums.RawMatrix()
	for l, rows := range byClass {
		dst := raw.Data[l*raw.Stride : l*raw.Stride+raw.Cols]
		for i := 0; i < len(rows); i += raw.Cols {
			for j, v := range rows[i : i+raw.Cols] {
				dst[j] += float64(v)
			}
		}
	}
}

// classGrams returns the d×d Grams of sums, zero for a class with no rows.
func classGrams(sums []gramSum, d int) []*mat.SymDense {
	grams := make([]*mat.SymDense, len(sums))
	for l := range sums {
		if grams[l] = sums[l].gram(); grams[l] == nil {
			grams[l] = mat.NewSymDense(d, nil)
		}
	}
	return grams
}

// gram returns the Gram accumulated so far (nil before the first add).
func (a *gramSum) gram() *mat.SymDense {
	if a.st != nil {
		return a.st.Gram()
	}
	return a.g
}

// gram returns the Gram of the clipped rows x, quantised to Quantize bits
// (exact) if Quantize is set, else in the precision of Float64.
func (s *FC) gram(x *linalg.Matrix32) (*mat.SymDense, error) {
	q, err := quantum(s.ClipNorm, s.Quantize)
	if err != nil || q == 0 {
		if err != nil {
			return nil, err
		}
		return linalg.GramPrecision(x, s.Workers, precision(s.Float64))
	}
	a := gramSum{q: q, workers: s.Workers}
	if err := a.add(x); err != nil {
		return nil, err
	}
	return a.gram(), nil
}

// precision maps a solver's Float64 field to the linalg precision of its
// Grams: exact float64 products if set, float32 blocks (the default) if not.
func precision(float64Products bool) linalg.Precision {
	if float64Products {
		return linalg.Float64
	}
	return linalg.Float32
}
