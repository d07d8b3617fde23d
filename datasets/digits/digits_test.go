package digits

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	x, y, err := Load()
	require.NoError(t, err)
	if x.Rows != Rows || x.Cols != Dim || len(y) != Rows {
		t.Fatalf("got %d×%d with %d labels, want %d×%d", x.Rows, x.Cols, len(y), Rows, Dim)
	}
	counts := make([]int, Classes)
	for _, l := range y {
		counts[l]++
	}
	for l, c := range counts {
		if c < 170 || c > 190 { // the UCI test part has 174–183 images per digit
			t.Errorf("class %d has %d images, want 170–190", l, c)
		}
	}
	for _, v := range x.Data {
		if v < 0 || v > 1 {
			t.Fatalf("pixel %v outside [0, 1]", v)
		}
	}
}

func TestSplitStratifiedAndNormalised(t *testing.T) {
	trX, trY, teX, teY, err := Split()
	require.NoError(t, err)
	if trX.Rows != 1200 || teX.Rows != 597 || len(trY) != 1200 || len(teY) != 597 {
		t.Fatalf("split %d/%d, want 1200/597", trX.Rows, teX.Rows)
	}
	tr, te := make([]int, Classes), make([]int, Classes)
	for _, l := range trY {
		tr[l]++
	}
	for _, l := range teY {
		te[l]++
	}
	for l := range Classes {
		frac := float64(tr[l]) / float64(tr[l]+te[l])
		if math.Abs(frac-1200.0/1797) > 0.01 {
			t.Errorf("class %d: training share %.3f, want ≈ %.3f", l, frac, 1200.0/1797)
		}
	}
	for i := range trX.Rows {
		var s float64
		for _, v := range trX.Row(i) {
			s += float64(v) * float64(v)
		}
		if math.Abs(s-1) > 1e-5 { // float32 rounding of 64 entries
			t.Fatalf("row %d has squared norm %v, want 1", i, s)
		}
	}
	a, _, _, _, _ := Split()
	for i := range a.Data {
		if a.Data[i] != trX.Data[i] {
			t.Fatal("Split is not deterministic")
		}
	}
}
