// Package digits embeds the UCI "Optical Recognition of Handwritten Digits"
// data set (8×8 version, 1797 images, 10 classes; E. Alpaydin and C. Kaynak,
// 1998, CC BY 4.0, https://doi.org/10.24432/C50P49), as redistributed with
// scikit-learn. See LICENSE.md beside this file.
//
// It is dpopt's built-in real data set: small enough to train on in
// milliseconds, real enough that accuracy means something.
package digits

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/dpopt/dpopt/linalg"
)

//go:embed digits.csv.gz
var raw []byte

// Dim is the number of pixels of an image; Classes the number of digits.
const (
	Dim     = 64
	Classes = 10
	Rows    = 1797
)

// Load returns all images as rows of pixels scaled to [0, 1] (pixel/16) and
// their labels 0…9.
func Load() (*linalg.Matrix32, []int, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("digits: %w", err)
	}
	r := csv.NewReader(zr)
	r.FieldsPerRecord = Dim + 1
	x := linalg.NewMatrix32(0, Dim)
	var y []int
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("digits: %w", err)
		}
		for _, f := range rec[:Dim] {
			v, err := strconv.ParseFloat(f, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("digits: %w", err)
			}
			x.Data = append(x.Data, float32(v/16))
		}
		l, err := strconv.Atoi(rec[Dim])
		if err != nil || l < 0 || l >= Classes {
			return nil, nil, fmt.Errorf("digits: bad label %q", rec[Dim])
		}
		y = append(y, l)
	}
	x.Rows = len(y)
	return x, y, nil
}

// Split returns the fixed stratified split used throughout dpopt's tests and
// examples: rows are L2-normalised, then within each class the examples are
// shuffled by a fixed permutation (seed 2026) and the first ⌈2/3⌉ go to
// training, so the training set has 1200 rows and the test set 597.
func Split() (trainX *linalg.Matrix32, trainY []int, testX *linalg.Matrix32, testY []int, err error) {
	x, y, err := Load()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	normalize(x)
	byClass := make([][]int, Classes)
	for i, l := range y {
		byClass[l] = append(byClass[l], i)
	}
	// Deterministic shuffle of each class (a splitmix64 stream), then take a
	// share of each class proportional to 1200/1797, with the remainders
	// assigned so that exactly 1200 rows are in training.
	state := uint64(2026)
	next := func() uint64 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	const nTrain = 1200
	quota := make([]int, Classes)
	total := 0
	for l, idx := range byClass {
		for i := len(idx) - 1; i > 0; i-- {
			j := int(next() % uint64(i+1))
			idx[i], idx[j] = idx[j], idx[i]
		}
		quota[l] = len(idx) * nTrain / Rows
		total += quota[l]
	}
	for l := 0; total < nTrain; l = (l + 1) % Classes {
		quota[l]++
		total++
	}
	trainX, testX = linalg.NewMatrix32(0, Dim), linalg.NewMatrix32(0, Dim)
	for l, idx := range byClass {
		for i, r := range idx {
			if i < quota[l] {
				trainX.Data = append(trainX.Data, x.Row(r)...)
				trainY = append(trainY, l)
			} else {
				testX.Data = append(testX.Data, x.Row(r)...)
				testY = append(testY, l)
			}
		}
	}
	trainX.Rows, testX.Rows = len(trainY), len(testY)
	return trainX, trainY, testX, testY, nil
}

// normalize scales every row of x to unit L2 norm (all-zero rows stay zero).
func normalize(x *linalg.Matrix32) {
	for i := range x.Rows {
		row := x.Row(i)
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			continue
		}
		inv := 1 / math.Sqrt(s)
		for j := range row {
			row[j] = float32(float64(row[j]) * inv)
		}
	}
}
