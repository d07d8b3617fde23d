//go:build openblas && cgo

package linalg

import (
	"gonum.org/v1/netlib/blas/netlib"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/blas/gonum"
)

// With OpenBLAS installed, whose float32 Ssyrk would round, quantised
// statistics still equal the pure-Go ones to the bit.
func TestOpenBLASQuantizedStats(t *testing.T) {
	const n, d, k = gramBLASRows + 300, 45, 3
	rnd := rand.New(rand.NewPCG(10, 11))
	x := clippedRows(rnd, n, d, 1)
	y := randLabels(rnd, n, k)
	q, err := Quantum(1, 16)
	require.NoError(t, err)
	want, err := NewQuantizedStats(d, k, q)
	require.NoError(t, err)
	require.NoError(t, want.Add(x, y))

	UseOpenBLAS()
	blas32.Use(netlib.Implementation{}) // the Float32 paths on OpenBLAS
	defer blas64.Use(gonum.Implementation{})
	defer blas32.Use(gonum.Implementation{})
	require.True(t, gramUseBLAS32())
	got, err := NewQuantizedStats(d, k, q)
	require.NoError(t, err)
	require.NoError(t, got.Add(x.Slice(0, 1000), y[:1000]))
	require.NoError(t, got.Add(x.Slice(1000, n), y[1000:]))
	requireSameStats(t, got, want)
}
