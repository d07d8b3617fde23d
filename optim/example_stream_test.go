package optim_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/dpopt/dpopt/datasets/digits"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/optim"
)

// Fit DP-FC to a feature file without loading it: one pass for the Gram,
// one per step for the clipped gradient sum, 256 rows in memory at a time.
func ExampleFC_SolveStream() {
	x, y, testX, testY, err := digits.Split()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "dpopt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "train.npz")
	if err := features.WriteNPZ(path, x, y); err != nil {
		log.Fatal(err)
	}

	sd := optim.FileData(path, features.Options{Classes: 10})
	sd.BlockRows = 256
	s := &optim.FC{
		Privacy:      optim.Privacy{Epsilon: 4, Delta: 1e-5},
		ClipNorm:     1,
		GradClipNorm: 1,
	}
	res, err := s.SolveStream(context.Background(), sd, nil, dp.NewSeededSource(1))
	if err != nil {
		log.Fatal(err)
	}
	acc, err := res.Model.Accuracy(&optim.Data{X: testX, Labels: testY, Classes: 10}, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("n = %d, releases: %d gram + %d gradient, ε spent %.3f\n",
		res.Report.N, res.Report.Releases[0].Count, res.Report.Releases[1].Count, res.Report.Spent)
	fmt.Println("test accuracy above 0.8:", acc > 0.8)
	// Output:
	// n = 1200, releases: 1 gram + 10 gradient, ε spent 4.000
	// test accuracy above 0.8: true
}
