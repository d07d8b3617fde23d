package features

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/linalg"
)

// Normalize scales every row of x in place to unit L2 norm (norms computed
// in float64); all-zero rows stay zero. Each row is rescaled by a function
// of itself only, so normalisation costs no privacy; it bounds ‖x_i‖ ≤ 1
// (up to float32 rounding — use dp.ClipRows for a guaranteed bound before
// a private release). It returns an error wrapping linalg.ErrEmpty,
// ErrShape or ErrNonFinite (from x.Check) for bad x, which is then unchanged.
func Normalize(x *linalg.Matrix32) error {
	if err := x.Check(); err != nil {
		return fmt.Errorf("features: normalize: %w", err)
	}
	for i := range x.Rows {
		row := x.Row(i)
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			continue
		}
		inv := 1 / math.Sqrt(s)
		for j, v := range row {
			row[j] = float32(float64(v) * inv)
		}
	}
	return nil
}

// MapAndNormalize applies the feature map f to x, or nothing if f is nil,
// and L2-normalises every row of the result with Normalize: the preparation
// `dpopt train` and the examples apply to training and test features alike.
// Both steps are row-wise and data-independent, so they cost no privacy. It
// returns the mapped matrix (x itself, normalised in place, when f is nil) or
// the error of Apply or Normalize.
func MapAndNormalize(x *linalg.Matrix32, f *RandomReLU) (*linalg.Matrix32, error) {
	if f != nil {
		var err error
		if x, err = f.Apply(x); err != nil {
			return nil, err
		}
	}
	if err := Normalize(x); err != nil {
		return nil, err
	}
	return x, nil
}

// RandomReLU is a random ReLU feature map x ↦ max(0, Wᵀx) with a Gaussian
// projection W of size d_in×Dim, W_jk ~ N(0, 1/d_in) independently (Rahimi
// and Recht, "Random Features for Large-Scale Kernel Machines", NIPS 2007;
// with ReLU, Cho and Saul's arc-cosine kernel, NIPS 2009).
//
// # Privacy
//
// The map is data-independent: W depends only on Seed, d_in and Dim, never on
// the data, so applying it to every row costs no privacy — the seed may be
// public. Clip or normalise the mapped rows (their norm is not bounded by
// that of the inputs) before any private release.
//
// # Randomness
//
// W is drawn from a ChaCha8 stream keyed by Seed with math/rand/v2's
// NormFloat64, row by row: the same Seed, d_in and Dim give the same W (and
// the same features, up to BLAS summation order) on every run.
type RandomReLU struct {
	Dim  int    // Number of output features d_out. Required.
	Seed uint64 // Seed of the projection.
}

// Weights returns the projection as a Dim×dIn matrix: row k is column k of W.
func (f RandomReLU) Weights(dIn int) (*mat.Dense, error) {
	if f.Dim < 1 || f.Dim > 1<<20 {
		return nil, paramError("Dim", float64(f.Dim), "must be in [1, 2²⁰]")
	}
	if dIn < 1 || dIn > 1<<24 || f.Dim*dIn > 1<<31 {
		return nil, wrapf(linalg.ErrShape, "random ReLU map of %d inputs to %d features", dIn, f.Dim)
	}
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], f.Seed)
	copy(key[8:], "dpopt/features.RandomReLU")
	rng := rand.New(rand.NewChaCha8(key))
	w := mat.NewDense(f.Dim, dIn, nil)
	sd := 1 / math.Sqrt(float64(dIn))
	// Draw W row by row (W_jk for j = 0…dIn-1, then k), storing Wᵀ.
	raw := w.RawMatrix()
	for j := range dIn {
		for k := range f.Dim {
			raw.Data[k*raw.Stride+j] = rng.NormFloat64() * sd
		}
	}
	return w, nil
}

// Apply returns the n×Dim matrix max(0, XW) for the n×d_in matrix x, which is
// not modified. It returns a *accountant.ParamError for Dim < 1 and an error
// wrapping linalg.ErrEmpty, ErrShape or ErrNonFinite for bad x.
func (f RandomReLU) Apply(x *linalg.Matrix32) (*linalg.Matrix32, error) {
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("features: random ReLU: %w", err)
	}
	w, err := f.Weights(x.Cols)
	if err != nil {
		return nil, err
	}
	return reluApply(x, w)
}

// Stream returns a stream of the mapped rows of s; the projection is drawn
// once. Closing it closes s.
func (f RandomReLU) Stream(s Stream) (Stream, error) {
	w, err := f.Weights(s.Dim())
	if err != nil {
		return nil, err
	}
	return Map(s, f.Dim, func(x *linalg.Matrix32) (*linalg.Matrix32, error) { return reluApply(x, w) }), nil
}

// reluApply computes max(0, X·wᵀ) in row blocks of bounded float64 scratch.
func reluApply(x *linalg.Matrix32, w *mat.Dense) (*linalg.Matrix32, error) {
	dOut, _ := w.Dims()
	out := linalg.NewMatrix32(x.Rows, dOut)
	block := max(1, min(x.Rows, (1<<21)/dOut)) // 16 MiB of float64 scratch
	var tmp mat.Dense
	for i := 0; i < x.Rows; i += block {
		j := min(i+block, x.Rows)
		tmp.Reset()
		if err := linalg.MulXWt(&tmp, x.Slice(i, j), w, 0); err != nil {
			return nil, fmt.Errorf("features: random ReLU: %w", err)
		}
		raw := tmp.RawMatrix()
		for r := range j - i {
			dst := out.Row(i + r)
			for k, v := range raw.Data[r*raw.Stride : r*raw.Stride+dOut] {
				dst[k] = float32(max(v, 0))
			}
		}
	}
	return out, nil
}

// Map returns a stream of f applied to each block of s; f must return a
// block of the same number of rows and dim columns. Labels pass through.
// Use it for data-independent, row-wise transformations (normalisation,
// clipping with dp.ClipRows, feature maps). Closing it closes s.
func Map(s Stream, dim int, f func(*linalg.Matrix32) (*linalg.Matrix32, error)) Stream {
	return &mapStream{s: s, dim: dim, f: f}
}

type mapStream struct {
	s   Stream
	dim int
	f   func(*linalg.Matrix32) (*linalg.Matrix32, error)
}

func (m *mapStream) Dim() int     { return m.dim }
func (m *mapStream) Close() error { return m.s.Close() }

func (m *mapStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	x, y, err := m.s.Next(maxRows)
	if err != nil {
		return nil, nil, err
	}
	z, err := m.f(x)
	if err != nil {
		return nil, nil, err
	}
	if z == nil || z.Rows != x.Rows || z.Cols != m.dim || len(z.Data) != z.Rows*z.Cols {
		return nil, nil, wrapf(linalg.ErrShape, "map: a block of %d rows became %v, want %d×%d", x.Rows, shapeOf(z), x.Rows, m.dim)
	}
	return z, y, nil
}

func shapeOf(m *linalg.Matrix32) string {
	if m == nil {
		return "nil"
	}
	return fmt.Sprintf("%d×%d", m.Rows, m.Cols)
}
