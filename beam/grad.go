package dpbeam

import (
	"encoding/binary"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
)

// gradPart is the clipped-gradient sum of one block (or of several, once
// combined): K×d sums, the summed loss and the row count.
type gradPart struct {
	K, D int
	N    int64
	Loss float64
	G    []float64 // K×d row-major
}

// Loss says which loss the gradient pipelines evaluate: the one-vs-all
// sigmoid loss of DP-FC (losses.Sigmoid) or softmax cross-entropy.
type Loss struct {
	Softmax   bool
	NegWeight float64 // α of losses.Sigmoid; zero means 1
	FixedBias float64 // losses.Sigmoid.FixedBias; DP-FC uses losses.PaperFixedBias
}

func (l Loss) loss() losses.Loss {
	if l.Softmax {
		return losses.Softmax{}
	}
	return losses.Sigmoid{NegWeight: l.NegWeight, FixedBias: l.FixedBias}
}

// gradFn computes, for each block, the sum over its rows of the per-example
// gradients at the weights W (a side input, EncodeWeights), each clipped to
// Frobenius norm GradClipNorm, of the loss on the rows prepared as Rows says.
type gradFn struct {
	Rows
	GradClipNorm float64
	Loss         Loss
}

func (f *gradFn) ProcessElement(b Block, wenc []byte) (gradPart, error) {
	w, err := DecodeWeights(wenc)
	if err != nil {
		return gradPart{}, err
	}
	return blockGradient(b, w, f.Rows, f.GradClipNorm, f.Loss)
}

// blockGradient is the work of gradFn on one block.
func blockGradient(b Block, w *mat.Dense, r Rows, gradClip float64, l Loss) (gradPart, error) {
	if _, err := r.quantum(); err != nil {
		return gradPart{}, err
	}
	if err := positive("GradClipNorm", gradClip); err != nil {
		return gradPart{}, err
	}
	if b.X == nil || b.Labels == nil {
		return gradPart{}, fmt.Errorf("dpbeam: block %s: gradients need labelled rows: %w", b.Key, linalg.ErrEmpty)
	}
	x, err := r.prepare(b.X)
	if err != nil {
		return gradPart{}, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	k, d := w.Dims()
	var batch losses.Batch
	if err := l.loss().Eval(&batch, x, b.Labels, w, nil, 1); err != nil {
		return gradPart{}, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	g := mat.NewDense(k, d, nil)
	if err := batch.ClipSum(g, nil, gradClip, 1); err != nil {
		return gradPart{}, fmt.Errorf("dpbeam: block %s: %w", b.Key, err)
	}
	return gradPart{K: k, D: d, N: int64(x.Rows), Loss: batch.Loss, G: g.RawMatrix().Data}, nil
}

// gradAcc is the accumulator of GradSumFn: exact sums of the block sums,
// each first rounded to a multiple of 2^lsb (see gradLayout).
type gradAcc struct {
	K, D int
	N    int64
	G    *fixed
	L    *fixed // one entry: the loss
}

// gradLayout is the grid of the exact gradient sums: multiples of about
// GradClipNorm·2⁻²⁰⁰, far below float64 resolution of anything the size of
// one clipped gradient, so the rounding to the grid (a function of each block
// sum alone) never shows in a step. Losses: multiples of 2⁻¹⁰⁰ up to 2¹⁰⁰ per
// row.
func gradLayout(gradClip float64) (lsb, words int) {
	_, e := math.Frexp(gradClip)
	return fixedLayout(e-200, gradClip)
}

func (a *gradAcc) add(p gradPart, gradClip float64) (*gradAcc, error) {
	if p.N == 0 {
		return a, nil
	}
	if a.D == 0 {
		lsb, w := gradLayout(gradClip)
		ll, lw := fixedLayout(-100, 0x1p100)
		a = &gradAcc{K: p.K, D: p.D, G: newFixed(p.K*p.D, lsb, w), L: newFixed(1, ll, lw)}
	}
	if a.K != p.K || a.D != p.D || len(p.G) != p.K*p.D {
		return nil, fmt.Errorf("dpbeam: gradient of shape %d×%d added to %d×%d: %w", p.K, p.D, a.K, a.D, linalg.ErrShape)
	}
	for i, v := range p.G {
		if err := a.G.add(i, v); err != nil {
			return nil, err
		}
	}
	if err := a.L.add(0, p.Loss); err != nil {
		return nil, err
	}
	a.N += p.N
	return a, nil
}

func (a *gradAcc) merge(o *gradAcc) (*gradAcc, error) {
	switch {
	case o == nil || o.D == 0:
		return a, nil
	case a == nil || a.D == 0:
		return o, nil
	case a.K != o.K || a.D != o.D:
		return nil, fmt.Errorf("dpbeam: merging gradients of shape %d×%d into %d×%d: %w", o.K, o.D, a.K, a.D, linalg.ErrShape)
	}
	if err := a.G.merge(o.G); err != nil {
		return nil, err
	}
	if err := a.L.merge(o.L); err != nil {
		return nil, err
	}
	a.N += o.N
	return a, nil
}

// GradientSum is a clipped-gradient sum over all rows: the output of a
// gradient pipeline, before noise.
type GradientSum struct {
	Sum  *mat.Dense // K×d: Σ_i clip(g_i), each entry correctly rounded
	Loss float64    // Σ_i loss_i (a diagnostic: not private)
	N    int64      // rows
}

func (a *gradAcc) result() (*GradientSum, error) {
	if a == nil || a.D == 0 {
		return nil, fmt.Errorf("dpbeam: gradient of no rows: %w", linalg.ErrEmpty)
	}
	g := make([]float64, a.K*a.D)
	for i := range g {
		g[i] = a.G.float(i)
	}
	return &GradientSum{Sum: mat.NewDense(a.K, a.D, g), Loss: a.L.float(0), N: a.N}, nil
}

func encodeGradAcc(a *gradAcc) ([]byte, error) {
	if a == nil || a.D == 0 {
		return []byte{0}, nil
	}
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(a.K))
	b = binary.AppendUvarint(b, uint64(a.D))
	b = binary.AppendUvarint(b, uint64(a.N))
	b = a.G.appendBinary(b)
	return a.L.appendBinary(b), nil
}

func decodeGradAcc(p []byte) (*gradAcc, error) {
	if len(p) == 1 && p[0] == 0 {
		return &gradAcc{}, nil
	}
	if len(p) == 0 || p[0] != 1 {
		return nil, errCorrupt
	}
	p = p[1:]
	vals, p, ok := readUvarints3(p)
	if !ok {
		return nil, errCorrupt
	}
	a := &gradAcc{K: int(vals[0]), D: int(vals[1]), N: int64(vals[2])}
	var err error
	if a.G, p, err = readFixed(p); err != nil {
		return nil, err
	}
	if a.L, p, err = readFixed(p); err != nil {
		return nil, err
	}
	if len(p) != 0 || a.D == 0 || a.G.len() != a.K*a.D || a.L.len() != 1 {
		return nil, errCorrupt
	}
	return a, nil
}

func encodeGradPart(p gradPart) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(p.K))
	b = binary.AppendUvarint(b, uint64(p.D))
	b = binary.AppendUvarint(b, uint64(p.N))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p.Loss))
	for _, v := range p.G {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	return b, nil
}

func decodeGradPart(b []byte) (gradPart, error) {
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return gradPart{}, errCorrupt
		}
		vals[i], b = v, b[n:]
	}
	k, d := vals[0], vals[1]
	if len(b) < 8 || d == 0 || k > uint64(len(b))/8/d || uint64(len(b)) != 8+8*k*d {
		return gradPart{}, errCorrupt
	}
	p := gradPart{K: int(k), D: int(d), N: int64(vals[2]), Loss: math.Float64frombits(binary.LittleEndian.Uint64(b))}
	p.G = make([]float64, k*d)
	for i := range p.G {
		p.G[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8+8*i:]))
	}
	return p, nil
}

// GradSumFn is a Beam CombineFn that sums per-block clipped-gradient sums
// exactly (to a grid of GradClipNorm·2⁻²⁰⁰, see the package documentation),
// so the result does not depend on the runner, the bundling or the order of
// merges. ExtractOutput returns a GradientSum encoded by EncodeGradientSum.
// No noise is added here. Memory: about 5·K·d words per accumulator.
type GradSumFn struct {
	// GradClipNorm is C_g, which sets the grid. Required.
	GradClipNorm float64
}

func (f *GradSumFn) CreateAccumulator() *gradAcc { return &gradAcc{} }

func (f *GradSumFn) AddInput(a *gradAcc, p gradPart) (*gradAcc, error) {
	return a.add(p, f.GradClipNorm)
}

func (f *GradSumFn) MergeAccumulators(a, b *gradAcc) (*gradAcc, error) { return a.merge(b) }

func (f *GradSumFn) ExtractOutput(a *gradAcc) ([]byte, error) {
	g, err := a.result()
	if err != nil {
		return nil, err
	}
	return EncodeGradientSum(g), nil
}

// EncodeGradientSum encodes g; DecodeGradientSum decodes it.
func EncodeGradientSum(g *GradientSum) []byte {
	b := binary.AppendUvarint(nil, uint64(g.N))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(g.Loss))
	return append(b, EncodeWeights(g.Sum)...)
}

// DecodeGradientSum decodes the output of EncodeGradientSum.
func DecodeGradientSum(b []byte) (*GradientSum, error) {
	n, m := binary.Uvarint(b)
	if m <= 0 || len(b) < m+8 {
		return nil, errCorrupt
	}
	loss := math.Float64frombits(binary.LittleEndian.Uint64(b[m:]))
	w, err := DecodeWeights(b[m+8:])
	if err != nil {
		return nil, err
	}
	return &GradientSum{Sum: w, Loss: loss, N: int64(n)}, nil
}

// EncodeWeights encodes a K×d matrix (rows, columns, float64 bits) for the
// side input of the gradient pipeline; DecodeWeights decodes it.
func EncodeWeights(w *mat.Dense) []byte {
	k, d := w.Dims()
	b := binary.AppendUvarint(nil, uint64(k))
	b = binary.AppendUvarint(b, uint64(d))
	for i := range k {
		for j := range d {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(w.At(i, j)))
		}
	}
	return b
}

// DecodeWeights decodes the output of EncodeWeights.
func DecodeWeights(b []byte) (*mat.Dense, error) {
	k, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, errCorrupt
	}
	b = b[n:]
	d, n := binary.Uvarint(b)
	if n <= 0 || k == 0 || d == 0 {
		return nil, errCorrupt
	}
	b = b[n:]
	if k > uint64(len(b))/8/d || uint64(len(b)) != 8*k*d {
		return nil, errCorrupt
	}
	v := make([]float64, k*d)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return mat.NewDense(int(k), int(d), v), nil
}
