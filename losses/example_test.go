package losses_test

import (
	"fmt"
	"log"

	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"gonum.org/v1/gonum/mat"
)

// A model with a trained bias: the loss, the per-example gradient norms
// (bias column included) and the full gradient.
func ExampleSoftmax() {
	x := &linalg.Matrix32{Rows: 3, Cols: 2, Data: []float32{
		1, 0,
		0, 1,
		1, 1,
	}}
	labels := []int{0, 1, 1}
	w := mat.NewDense(2, 2, []float64{
		1, -1,
		-1, 1,
	})
	bias := []float64{0, 0}

	var b losses.Batch
	if err := (losses.Softmax{}).Eval(&b, x, labels, w, bias, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loss %.3f\n", b.Loss)
	fmt.Printf("per-example gradient norms %.3f\n", b.Norms)

	gradW := &mat.Dense{}
	gradB := make([]float64, 2)
	if err := b.Grad(gradW, gradB, 0); err != nil {
		log.Fatal(err)
	}
	for l := range 2 {
		fmt.Printf("class %d: ∇W %.3f, ∇b %.3f\n", l, gradW.RawRowView(l), gradB[l])
	}
	// Output:
	// loss 0.947
	// per-example gradient norms [0.238 0.238 1.225]
	// class 0: ∇W [0.381 0.619], ∇b 0.500
	// class 1: ∇W [-0.381 -0.619], ∇b -0.500
}

// One DP-SGD gradient in the style of DP-FC: one-vs-all sigmoid loss, zero
// weights, the paper's fixed bias −10, per-example gradients clipped to
// norm 1 and summed — without materialising them.
func ExampleBatch_ClipSum() {
	x := &linalg.Matrix32{Rows: 4, Cols: 2, Data: []float32{
		1, 0,
		0, 2,
		3, 4,
		-1, 1,
	}}
	labels := []int{0, 1, 2, 1}
	w := mat.NewDense(3, 2, nil)
	loss := losses.Sigmoid{FixedBias: losses.PaperFixedBias}

	var b losses.Batch
	if err := loss.Eval(&b, x, labels, w, nil, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("loss %.3f\n", b.Loss)
	fmt.Printf("gradient norms %.3f\n", b.Norms)

	sum := &mat.Dense{}
	if err := b.ClipSum(sum, nil, 1, 0); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("clip factors %.3f\n", b.Factors)
	for l := range 3 {
		fmt.Printf("class %d: %.3f\n", l, sum.RawRowView(l))
	}
	// Output:
	// loss 40.001
	// gradient norms [1.000 2.000 5.000 1.414]
	// clip factors [1.000 0.500 0.200 0.707]
	// class 0: [-1.000 0.000]
	// class 1: [0.707 -1.707]
	// class 2: [-0.600 -0.800]
}
