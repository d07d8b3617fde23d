package linalg_test

import (
	"fmt"
	"log"
	"math"

	"github.com/dpopt/dpopt/linalg"
	"gonum.org/v1/gonum/mat"
)

func ExampleGram() {
	// Three examples with two features each, one per row.
	x := &linalg.Matrix32{Rows: 3, Cols: 2, Data: []float32{
		1, 2,
		3, 4,
		5, 6,
	}}
	g, err := linalg.Gram(x, 0) // 0 workers: GOMAXPROCS
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.3f %.3f\n%.3f %.3f\n", g.At(0, 0), g.At(0, 1), g.At(1, 0), g.At(1, 1))
	// Output:
	// 35.000 44.000
	// 44.000 56.000
}

func ExampleGramPrecision() {
	// 1000 rows of 3 features; the float32 Gram (products and sums in
	// float32 within 256-row blocks, blocks added in float64) against the
	// exact-product one.
	x := linalg.NewMatrix32(1000, 3)
	for i := range x.Data {
		x.Data[i] = float32(math.Sin(float64(i))) / 3
	}
	exact, err := linalg.GramPrecision(x, 0, linalg.Float64)
	if err != nil {
		log.Fatal(err)
	}
	fast, err := linalg.GramPrecision(x, 0, linalg.Float32)
	if err != nil {
		log.Fatal(err)
	}
	var worst float64
	for i := range 3 {
		for j := range 3 {
			worst = math.Max(worst, math.Abs(fast.At(i, j)-exact.At(i, j))/exact.At(i, i))
		}
	}
	fmt.Printf("G[0,0] = %.4f, float32 blocks within %v relative\n", exact.At(0, 0), worst < 1e-6)
	// Output:
	// G[0,0] = 55.4695, float32 blocks within true relative
}

func ExampleStats() {
	// Two shards, as if read on two machines, merged into one set of
	// statistics.
	a, _ := linalg.NewStats(2, 2)
	b, _ := linalg.NewStats(2, 2)
	if err := a.Add(&linalg.Matrix32{Rows: 2, Cols: 2, Data: []float32{1, 0, 0, 1}}, []int{0, 1}); err != nil {
		log.Fatal(err)
	}
	if err := b.Add(&linalg.Matrix32{Rows: 1, Cols: 2, Data: []float32{2, 2}}, []int{1}); err != nil {
		log.Fatal(err)
	}
	wire, err := b.MarshalBinary() // b travels as bytes
	if err != nil {
		log.Fatal(err)
	}
	var b2 linalg.Stats
	if err := b2.UnmarshalBinary(wire); err != nil {
		log.Fatal(err)
	}
	if err := a.Merge(&b2); err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows:", a.Count(), "per class:", a.ClassCounts())
	fmt.Printf("XᵀX:\n%.3f\n", mat.Formatted(a.Gram()))
	fmt.Printf("class sums (K×d):\n%.3f\n", mat.Formatted(a.ClassSums()))
	// Output:
	// rows: 3 per class: [1 2]
	// XᵀX:
	// ⎡5.000  4.000⎤
	// ⎣4.000  5.000⎦
	// class sums (K×d):
	// ⎡1.000  0.000⎤
	// ⎣2.000  3.000⎦
}

func ExampleProjectPSD() {
	// A noisy Gram matrix with eigenvalues 3 and -1.
	a := mat.NewSymDense(2, []float64{1, 2, 2, 1})
	p, err := linalg.ProjectPSD(a, 0)
	if err != nil {
		log.Fatal(err)
	}
	vals, _, _ := linalg.EigenSym(p)
	// The clamped eigenvalue is 0 up to rounding, which may carry either sign.
	fmt.Printf("projected:\n%.3f\neigenvalues: %.3f %.3f\n", mat.Formatted(p), math.Abs(vals[0]), vals[1])
	// Output:
	// projected:
	// ⎡1.500  1.500⎤
	// ⎣1.500  1.500⎦
	// eigenvalues: 0.000 3.000
}

func ExampleCholesky() {
	// Factor once, solve for several right-hand sides.
	a := mat.NewSymDense(2, []float64{4, 2, 2, 3})
	c, err := linalg.NewCholesky(a)
	if err != nil {
		log.Fatal(err)
	}
	x, err := c.Solve(mat.NewDense(2, 2, []float64{2, 6, 1, 5}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%.3f\n", mat.Formatted(x))
	// Output:
	// ⎡0.500  1.000⎤
	// ⎣0.000  1.000⎦
}

func ExampleCG() {
	a := mat.NewSymDense(2, []float64{4, 1, 1, 3})
	b := mat.NewDense(2, 1, []float64{1, 2})
	res, err := linalg.CG(a, b, 1e-10, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("x = (%.3f, %.3f) after %d iterations\n", res.X.At(0, 0), res.X.At(1, 0), res.Iterations[0])
	// Output:
	// x = (0.091, 0.636) after 2 iterations
}

// A Team keeps its goroutines awake across the short calls of a training
// loop: here 200 gradient steps of least squares on four examples, each
// step's ScoreGradRows on the Team while the Team also runs an unrelated
// function (a DP-SGD loop draws its noise there).
func ExampleTeam() {
	team, err := linalg.NewTeam(2)
	if err != nil {
		log.Fatal(err)
	}
	defer team.Close()
	x := &linalg.Matrix32{Rows: 4, Cols: 2, Data: []float32{1, 0, 0, 1, 1, 1, 2, 1}}
	y := []float64{1, 2, 3, 4} // y = x₀ + 2·x₁
	w := mat.NewDense(1, 2, nil)
	g := mat.NewDense(1, 2, nil)
	ws := linalg.RowsWork{Team: team}
	residual := func(first int, s []float64, stride int, norms []float64) error {
		for i := range norms {
			s[i*stride] -= y[first+i] // ∂/∂s of (s − y)²/2
		}
		return nil
	}
	steps := 0
	for range 200 {
		team.Go(func() { steps++ })
		if err := linalg.ScoreGradRows(g, x, nil, w, residual, &ws, 0); err != nil {
			log.Fatal(err)
		}
		team.Wait()
		for j := range 2 {
			w.Set(0, j, w.At(0, j)-0.1*g.At(0, j))
		}
	}
	fmt.Printf("%d steps: w = [%.3f %.3f]\n", steps, w.At(0, 0), w.At(0, 1))
	// Output: 200 steps: w = [1.000 2.000]
}
