package optimtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/optim"
)

// Shape of the default data of Run: Synthetic(DefaultN, DefaultDim, DefaultClasses, 1).
const (
	DefaultN       = 240
	DefaultDim     = 8
	DefaultClasses = 3
)

// Synthetic returns a well-separated classification problem: n rows of
// dimension d in k ≤ d classes (row i is in class i mod k), each row the unit
// vector e_class plus independent N(0, 0.15²) noise in every coordinate, then
// scaled to L2 norm 1. A linear classifier through the origin separates the
// classes with margin, so a non-private solver should classify almost all
// rows correctly. The data is a fixed function of the arguments. It panics if
// n < k, k < 2 or k > d, which are errors in a test.
func Synthetic(n, d, k int, seed uint64) *optim.Data {
	if k < 2 || k > d || n < k {
		panic(fmt.Sprintf("optimtest: Synthetic(%d, %d, %d): need 2 ≤ k ≤ d and n ≥ k", n, d, k))
	}
	rng := rand.New(rand.NewPCG(seed, 0x6f7074696d746573)) // "optimtes"
	x := linalg.NewMatrix32(n, d)
	labels := make([]int, n)
	row := make([]float64, d)
	for i := range n {
		labels[i] = i % k
		for j := range row {
			row[j] = 0.15 * rng.NormFloat64()
		}
		row[labels[i]]++
		var s float64
		for _, v := range row {
			s += v * v
		}
		s = math.Sqrt(s)
		for j, v := range row {
			x.Row(i)[j] = float32(v / s)
		}
	}
	return &optim.Data{X: x, Labels: labels, Classes: k}
}

// Digits returns the training (1200 rows) and test (597 rows) sets of the
// built-in digits data, in the fixed split of digits.Split: 64 features per
// row, L2-normalised, 10 classes.
func Digits() (train, test *optim.Data, err error) {
	trX, trY, teX, teY, err := digits.Split()
	if err != nil {
		return nil, nil, fmt.Errorf("optimtest: %w", err)
	}
	return &optim.Data{X: trX, Labels: trY, Classes: digits.Classes},
		&optim.Data{X: teX, Labels: teY, Classes: digits.Classes}, nil
}

// clone returns a deep copy of d.
func clone(d *optim.Data) *optim.Data {
	c := *d
	if d.X != nil {
		x := *d.X
		x.Data = slices.Clone(d.X.Data)
		c.X = &x
	}
	c.Labels = slices.Clone(d.Labels)
	return &c
}

// sameData reports whether a and b hold the same features (bit for bit),
// labels and classes.
func sameData(a, b *optim.Data) bool {
	if a.Classes != b.Classes || !slices.Equal(a.Labels, b.Labels) || a.X.Rows != b.X.Rows || a.X.Cols != b.X.Cols {
		return false
	}
	for i, v := range a.X.Data {
		if math.Float32bits(v) != math.Float32bits(b.X.Data[i]) {
			return false
		}
	}
	return true
}
