package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// TestCopyClip checks the parallel copy-and-clip against dp.ClipRows on a
// whole copy, bit for bit, for several workers counts and a row count that
// is not a multiple of the chunk, and that a bad entry is reported at its
// place in the source, with the source unchanged.
func TestCopyClip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(4, 5))
	n, d := 3*clipChunkRows+17, 9
	src := linalg.NewMatrix32(n, d)
	for i := range src.Data {
		src.Data[i] = float32(3 * rnd.NormFloat64())
	}
	want := &linalg.Matrix32{Rows: n, Cols: d, Data: append([]float32(nil), src.Data...)}
	_, err := dp.ClipRows(want, 2)
	require.NoError(t, err)
	for _, workers := range []int{0, 1, 2, 3, 8} {
		got := linalg.NewMatrix32(n, d)
		require.NoError(t, copyClip(got, src, 2, workers))
		for i := range got.Data {
			if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) {
				t.Fatalf("workers=%d: entry %d = %v, want %v", workers, i, got.Data[i], want.Data[i])
			}
		}
	}
	before := append([]float32(nil), src.Data...)
	src.Data[(2*clipChunkRows+5)*d+3] = float32(math.Inf(1))
	before[(2*clipChunkRows+5)*d+3] = src.Data[(2*clipChunkRows+5)*d+3]
	err = copyClip(linalg.NewMatrix32(n, d), src, 2, 2)
	require.True(t, errors.Is(err, linalg.ErrNonFinite), "got %v", err)
	require.True(t, strings.Contains(err.Error(), "entry (1029, 3)"), "error %q does not name row 1029, column 3", err)
	require.Equal(t, before, src.Data, "source modified")
}
