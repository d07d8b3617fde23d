package optim

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"

	"codeberg.org/sbinet/npyio/npz"
	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/internal/atomicfile"
	"github.com/dpopt/dpopt/linalg"
)

// Model is a linear classifier: scores s = W·x + Bias, prediction argmax_l s_l.
type Model struct {
	W    *mat.Dense // K×d weights, one row per class.
	Bias []float64  // K biases; nil means all zero.
}

// Classes returns K, Dim returns d.
func (m *Model) Classes() int { r, _ := m.W.Dims(); return r }

// Dim returns the feature dimension d.
func (m *Model) Dim() int { _, c := m.W.Dims(); return c }

func (m *Model) check(d int) error {
	if m == nil || m.W == nil || m.W.IsEmpty() {
		return fmt.Errorf("optim: empty model: %w", linalg.ErrEmpty)
	}
	k, dim := m.W.Dims()
	if dim != d {
		return fmt.Errorf("optim: model of dimension %d on features of dimension %d: %w", dim, d, linalg.ErrShape)
	}
	if m.Bias != nil && len(m.Bias) != k {
		return fmt.Errorf("optim: %d biases for %d classes: %w", len(m.Bias), k, linalg.ErrShape)
	}
	return nil
}

// Predict returns the predicted class of every row of x, computing the scores
// on workers goroutines (0 means GOMAXPROCS).
func (m *Model) Predict(x *linalg.Matrix32, workers int) ([]int, error) {
	if err := x.Check(); err != nil {
		return nil, fmt.Errorf("optim: predict: %w", err)
	}
	if err := m.check(x.Cols); err != nil {
		return nil, err
	}
	k := m.Classes()
	const block = 8192
	scores := mat.NewDense(min(block, x.Rows), k, nil)
	pred := make([]int, x.Rows)
	for i0 := 0; i0 < x.Rows; i0 += block {
		i1 := min(i0+block, x.Rows)
		s := scores.Slice(0, i1-i0, 0, k).(*mat.Dense)
		if err := linalg.MulXWt(s, x.Slice(i0, i1), m.W, workers); err != nil {
			return nil, fmt.Errorf("optim: predict: %w", err)
		}
		for i := i0; i < i1; i++ {
			row := s.RawRowView(i - i0)
			best, arg := math.Inf(-1), 0
			for l, v := range row {
				if m.Bias != nil {
					v += m.Bias[l]
				}
				if v > best {
					best, arg = v, l
				}
			}
			pred[i] = arg
		}
	}
	return pred, nil
}

// Accuracy returns the fraction of examples of d whose label the model predicts.
func (m *Model) Accuracy(d *Data, workers int) (float64, error) {
	if err := d.Validate(); err != nil {
		return 0, err
	}
	pred, err := m.Predict(d.X, workers)
	if err != nil {
		return 0, err
	}
	hit := 0
	for i, p := range pred {
		if p == d.Labels[i] {
			hit++
		}
	}
	return float64(hit) / float64(len(pred)), nil
}

// Save writes the model to path as a NumPy .npz archive with arrays "W" (K×d,
// float64) and "bias" (K, float64), readable with numpy.load. The file is
// written to a temporary file and renamed, never left half-written.
func (m *Model) Save(path string) error {
	if err := m.check(m.Dim()); err != nil {
		return err
	}
	bias := m.Bias
	if bias == nil {
		bias = make([]float64, m.Classes())
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		zw := npz.NewWriter(w)
		if err := zw.Write("W", m.W); err != nil {
			return fmt.Errorf("optim: save model: %w", err)
		}
		if err := zw.Write("bias", bias); err != nil {
			return fmt.Errorf("optim: save model: %w", err)
		}
		if err := zw.Close(); err != nil {
			return fmt.Errorf("optim: save model: %w", err)
		}
		return nil
	})
}

// LoadModel reads a model written by Save (or by numpy.savez with float64
// arrays "W" of shape (K, d) and "bias" of shape (K,)).
func LoadModel(path string) (*Model, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("optim: load model: %w", err)
	}
	r, err := npz.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("optim: load model %s: %w: %w", path, linalg.ErrFormat, err)
	}
	// numpy.savez names its entries "W.npy" and "bias.npy"; Save writes "W" and "bias".
	entry := func(name string) string {
		for _, k := range r.Keys() {
			if k == name+".npy" {
				return k
			}
		}
		return name
	}
	// A header that claims more elements than the archive holds would make
	// npz allocate them (and panic, or exhaust memory): check it first.
	for _, name := range []string{entry("W"), entry("bias")} {
		h := r.Header(name)
		if h == nil {
			continue // Read reports the missing array
		}
		n := int64(1)
		for _, d := range h.Descr.Shape {
			if d < 0 || (d > 0 && n > int64(len(raw))/int64(d)) {
				return nil, fmt.Errorf("optim: load model %s: %s: shape %v larger than the file: %w", path, name, h.Descr.Shape, linalg.ErrFormat)
			}
			n *= int64(d)
		}
		if n > int64(len(raw))/8 {
			return nil, fmt.Errorf("optim: load model %s: %s: shape %v larger than the file: %w", path, name, h.Descr.Shape, linalg.ErrFormat)
		}
	}
	var w mat.Dense
	if err := r.Read(entry("W"), &w); err != nil {
		return nil, fmt.Errorf("optim: load model %s: W: %w: %w", path, linalg.ErrFormat, err)
	}
	var bias []float64
	if err := r.Read(entry("bias"), &bias); err != nil {
		return nil, fmt.Errorf("optim: load model %s: bias: %w: %w", path, linalg.ErrFormat, err)
	}
	m := &Model{W: &w, Bias: bias}
	if w.IsEmpty() {
		return nil, fmt.Errorf("optim: load model %s: %w", path, linalg.ErrEmpty)
	}
	if err := m.check(m.Dim()); err != nil {
		return nil, fmt.Errorf("optim: load model %s: %w", path, err)
	}
	for _, v := range append(append([]float64(nil), w.RawMatrix().Data...), bias...) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("optim: load model %s: %w", path, linalg.ErrNonFinite)
		}
	}
	return m, nil
}
