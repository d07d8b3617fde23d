package linalg

import "fmt"

// Precision selects the arithmetic of the heavy products of float32 rows:
// the Gram XᵀX and the GEMMs X·Wᵀ and Rᵀ·X.
//
// Float64, the zero value, converts every float32 entry to float64, so each
// product of two entries is exact, and sums in float64: the error of an entry
// is that of float64 summation, about (number of terms)·2⁻⁵³ of the sum of
// the magnitudes of its terms.
//
// Float32 computes products and sums in float32 within blocks of at most a
// few hundred terms (as numpy and OpenBLAS compute X.T @ X from float32
// rows), and adds the block results in float64. An entry then carries a
// rounding error of at most about (block length + 1)·2⁻²⁴ of the sum of the
// magnitudes of its block's terms, typically √(block length) times less or
// better — the Gram's blocks have 256 rows (2560 on an installed BLAS):
// a bound of 1.5·10⁻⁵ of Σ|x_ri·x_rj|, against a measured maximum of about
// 2·10⁻⁷ and a median of 10⁻⁹ to 3·10⁻⁸ (TestGram32Accuracy; at n = 50 000,
// d = 768, uniform entries: 6·10⁻⁸ and 10⁻⁹), far below the noise of
// any differentially private release — and costs about half the time of
// Float64 on CPUs whose vector units hold twice as many float32 as float64
// lanes. Blocks holding entries whose float32 products could underflow or
// overflow are computed as by Float64, so the bound holds for all accepted
// input (see GramPrecision).
//
// Neither precision is covered by a sensitivity analysis of the rounding
// itself: a release whose sensitivity must hold to the last bit needs
// quantised rows (NewQuantizedStats), whose sums are exact in any precision.
// Both precisions give results that do not depend on the number of workers.
type Precision int

const (
	// Float64 computes exact products of float32 entries and float64 sums.
	Float64 Precision = iota
	// Float32 computes float32 products and sums within blocks of rows,
	// and float64 sums across blocks.
	Float32
)

// String returns "float64" or "float32".
func (p Precision) String() string {
	switch p {
	case Float64:
		return "float64"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// check returns an error wrapping ErrParam for an unknown precision.
func (p Precision) check() error {
	if p != Float64 && p != Float32 {
		return fmt.Errorf("linalg: unknown precision %d: %w", int(p), ErrParam)
	}
	return nil
}
