package dp_test

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// ExampleSigmaForGaussian calibrates the noise of one release of a statistic
// of L2 sensitivity 1 to (1, 1e-5)-DP, and checks the δ it achieves.
func ExampleSigmaForGaussian() {
	sigma, err := dp.SigmaForGaussian(1, 1e-5, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	delta, _ := dp.DeltaForGaussian(sigma, 1, 1)
	fmt.Printf("sigma = %.3f, delta = %.3g\n", sigma, delta)
	// Output:
	// sigma = 3.731, delta = 1e-05
}

// ExampleLogDeltaForGaussian evaluates a δ too small for a float64.
func ExampleLogDeltaForGaussian() {
	l, _ := dp.LogDeltaForGaussian(1, 50, 1)
	fmt.Printf("ln delta = %.3f\n", l)
	// Output:
	// ln delta = -1233.869
}

// ExampleGaussian releases a noisy sum of two clipped rows.
func ExampleGaussian() {
	x := &linalg.Matrix32{Rows: 2, Cols: 2, Data: []float32{3, 4, 0.3, 0.4}}
	norms, _ := dp.ClipRows(x, 1) // the first row is scaled to norm 1
	fmt.Printf("norms %.3f, clipped row 0: %.3f\n", norms, x.Row(0))

	sum := []float64{float64(x.Data[0] + x.Data[2]), float64(x.Data[1] + x.Data[3])}
	sens, _ := dp.SumSensitivity(1, dp.AddRemove)
	g := dp.Gaussian{Sensitivity: sens, NoiseMultiplier: 2}
	if err := g.Add(sum, dp.NewSeededSource(42)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("noisy sum: %.3f\n", sum)
	// Output:
	// norms [5.000 0.500], clipped row 0: [0.600 0.800]
	// noisy sum: [3.999 2.908]
}

// ExampleAddGaussianSym adds symmetric noise to a Gram matrix: the result
// stays symmetric, with variance σ² on the diagonal and σ²/2 off it.
func ExampleAddGaussianSym() {
	gram := mat.NewSymDense(2, []float64{2, 1, 1, 2})
	if err := dp.AddGaussianSym(gram, 0.1, dp.NewSeededSource(7)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.3f %.3f\n%.3f %.3f\n", gram.At(0, 0), gram.At(0, 1), gram.At(1, 0), gram.At(1, 1))
	// Output:
	// 2.008 0.973
	// 0.973 1.944
}

// ExampleNewSecureSource shows that a secure Source's noise lies on the grid
// of the hardened sampler, whatever the data.
func ExampleNewSecureSource() {
	src := dp.NewSecureSource()
	x := []float64{0.1, 1.0 / 3, math.Pi}
	if err := dp.AddGaussian(x, 1, src); err != nil {
		fmt.Println(err)
		return
	}
	g := dp.SecureGranularity(1)
	onGrid := true
	for _, v := range x {
		onGrid = onGrid && math.Mod(v, g) == 0
	}
	fmt.Printf("grid 2^%.0f, on grid: %v\n", math.Log2(g), onGrid)
	// Output:
	// grid 2^-49, on grid: true
}
