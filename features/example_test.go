package features_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

// Write a small feature file and read it back whole.
func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "features")
	defer os.RemoveAll(dir)
	x := &linalg.Matrix32{Rows: 3, Cols: 2, Data: []float32{1, 2, 3, 4, 5, 6}}
	path := filepath.Join(dir, "train.npz")
	if err := features.WriteNPZ(path, x, []int{0, 1, 1}); err != nil {
		fmt.Println(err)
		return
	}
	got, labels, err := features.Load(path, features.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.Rows, got.Cols, got.Data, labels)
	// Output: 3 2 [1 2 3 4 5 6] [0 1 1]
}

// Accumulate sufficient statistics over a sharded TFRecord data set in
// blocks, holding one block in memory at a time.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "features")
	defer os.RemoveAll(dir)
	for shard := range 2 {
		x := &linalg.Matrix32{Rows: 2, Cols: 2, Data: []float32{1, 0, 0, 1}}
		name := filepath.Join(dir, fmt.Sprintf("train.tfr-%05d-of-00002", shard))
		if err := features.WriteTFRecord(name, x, []int{0, 1}); err != nil {
			fmt.Println(err)
			return
		}
	}
	s, err := features.Open(filepath.Join(dir, "train.tfr*"), features.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	stats, _ := linalg.NewStats(s.Dim(), 2)
	for {
		x, y, err := s.Next(3)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		if err := stats.Add(x, y); err != nil {
			fmt.Println(err)
			return
		}
	}
	fmt.Println(stats.Count(), stats.ClassCounts())
	fmt.Printf("%.3f\n", stats.Gram().At(0, 0))
	// Output:
	// 4 [2 2]
	// 2.000
}

// A data-independent random ReLU feature map costs no privacy.
func ExampleRandomReLU() {
	x := &linalg.Matrix32{Rows: 2, Cols: 3, Data: []float32{1, 0, 0, 0, 1, 0}}
	phi, err := features.RandomReLU{Dim: 4, Seed: 1}.Apply(x)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := features.Normalize(phi); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(phi.Rows, phi.Cols)
	// Output: 2 4
}

// Read a CSV file whose header names the label column.
func ExampleCSVOptions() {
	dir, _ := os.MkdirTemp("", "features")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data.csv")
	os.WriteFile(path, []byte("height,width,class\n1.5,2,1\n0.5,4,0\n"), 0o644)
	x, y, err := features.Load(path, features.Options{CSV: features.CSVOptions{LabelName: "class"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(x.Data, y)
	// Output: [1.5 2 0.5 4] [1 0]
}
