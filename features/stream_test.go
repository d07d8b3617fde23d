package features

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/linalg"
)

// writeCSV writes x and y as CSV with the label in column labelCol (of
// d+1), formatting floats exactly, optionally with a header.
func writeCSV(t *testing.T, path string, x *linalg.Matrix32, y []int, labelCol int, header bool) {
	t.Helper()
	var b strings.Builder
	if header {
		for j := range x.Cols + 1 {
			if j > 0 {
				b.WriteByte(',')
			}
			if j == labelCol {
				b.WriteString("label")
			} else {
				fmt.Fprintf(&b, "f%d", j)
			}
		}
		b.WriteByte('\n')
	}
	for i := range x.Rows {
		row := x.Row(i)
		k := 0
		for j := range x.Cols + 1 {
			if j > 0 {
				b.WriteString(", ")
			}
			if j == labelCol {
				b.WriteString(strconv.Itoa(y[i]))
				continue
			}
			b.WriteString(strconv.FormatFloat(float64(row[k]), 'g', -1, 32))
			k++
		}
		b.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

// TestStreamStatsMatchLoad computes linalg.Stats over stream blocks and over
// the same row blocks of the loaded matrix, for every format: the results
// must be bit-identical (linalg.Stats is exact given the same Add calls).
func TestStreamStatsMatchLoad(t *testing.T) {
	const n, d, k, block = 1000, 17, 6, 128
	dir := t.TempDir()
	x, y := testData(n, d, k, 8)
	files := map[string]Options{}
	p := filepath.Join(dir, "a.npz")
	require.NoError(t, WriteNPZ(p, x, y))
	files[p] = Options{}
	p = filepath.Join(dir, "a.tfrecord")
	require.NoError(t, WriteTFRecord(p, x, y))
	files[p] = Options{}
	p = filepath.Join(dir, "a.csv")
	writeCSV(t, p, x, y, d, true)
	files[p] = Options{CSV: CSVOptions{LabelName: "label"}}
	p = filepath.Join(dir, "x.npy")
	xs, err := os.ReadFile(filepath.Join(dir, "a.npz")) // reuse the npz entries as .npy files
	require.NoError(t, err)
	z, err := zip.NewReader(bytes.NewReader(xs), int64(len(xs)))
	require.NoError(t, err)
	for _, f := range z.File {
		rc, err := f.Open()
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		writeFile(t, dir, f.Name, b)
	}
	files[filepath.Join(dir, "features.npy")] = Options{LabelFile: filepath.Join(dir, "labels.npy")}

	for path, o := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			gx, gy, err := Load(path, o)
			require.NoError(t, err)
			requireSame(t, gx, gy, x, y)

			s, err := Open(path, o)
			require.NoError(t, err)
			defer s.Close()
			if s.Dim() != d {
				t.Fatalf("Dim() = %d, want %d", s.Dim(), d)
			}
			streamed, err := linalg.NewStats(d, k)
			require.NoError(t, err)
			loaded, err := linalg.NewStats(d, k)
			require.NoError(t, err)
			rows := 0
			for {
				b, l, err := s.Next(block)
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				if b.Rows > block || b.Rows < 1 {
					t.Fatalf("block of %d rows, want 1…%d", b.Rows, block)
				}
				require.NoError(t, streamed.Add(b, l))
				require.NoError(t, loaded.Add(gx.Slice(rows, rows+b.Rows), gy[rows:rows+b.Rows]))
				rows += b.Rows
			}
			if rows != n {
				t.Fatalf("streamed %d rows, want %d", rows, n)
			}
			a, err := streamed.MarshalBinary()
			require.NoError(t, err)
			b, err := loaded.MarshalBinary()
			require.NoError(t, err)
			if !bytes.Equal(a, b) {
				t.Error("statistics over the stream differ from those over the loaded matrix")
			}
		})
	}
}

func TestCSVOptions(t *testing.T) {
	dir := t.TempDir()
	x, y := testData(40, 3, 4, 9)
	cases := []struct {
		name     string
		labelCol int
		header   bool
		opts     Options
	}{
		{"first column, no header", 0, false, Options{}},
		{"last column by negative index", 3, false, Options{CSV: CSVOptions{LabelColumn: -1}}},
		{"middle column by index, header", 1, true, Options{CSV: CSVOptions{Header: true, LabelColumn: 1}}},
		{"by name", 2, true, Options{CSV: CSVOptions{LabelName: "label"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, "a.csv")
			writeCSV(t, p, x, y, c.labelCol, c.header)
			gx, gy, err := Load(p, c.opts)
			require.NoError(t, err)
			requireSame(t, gx, gy, x, y)
		})
	}
	// Semicolons, comments, gzip, unlabelled.
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	fmt.Fprint(zw, "# made by hand\n1;2.5;3\n-4;5;6e-3\n")
	require.NoError(t, zw.Close())
	p := writeFile(t, dir, "b.csv.gz", b.Bytes())
	gx, gy, err := Load(p, Options{Unlabeled: true, CSV: CSVOptions{Comma: ';'}})
	require.NoError(t, err)
	want := []float32{1, 2.5, 3, -4, 5, 6e-3}
	if gy != nil || gx.Rows != 2 || gx.Cols != 3 || !equal32(gx.Data, want) {
		t.Errorf("got %d×%d %v labels %v, want 2×3 %v no labels", gx.Rows, gx.Cols, gx.Data, gy, want)
	}
	// A label written as a float that is an integer is accepted.
	p = writeFile(t, dir, "c.csv", []byte("1.0,2\n3e0,4\n"))
	_, gy, err = Load(p, Options{})
	require.NoError(t, err)
	if !equalInts(gy, []int{1, 3}) {
		t.Errorf("got labels %v, want [1 3]", gy)
	}
}

// TestNPZCompressed reads an archive whose entries are deflated, as
// numpy.savez_compressed writes them.
func TestNPZCompressed(t *testing.T) {
	x, y := testData(100, 5, 3, 10)
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, e := range []struct {
		name string
		data []byte
	}{
		{"x.npy", npyFile(1, npyDict("<f4", "(100, 5)"), f32s(x.Data...))},
		{"y.npy", npyFile(1, npyDict("<i8", "(100,)"), i64s(int64s(y)...))},
	} {
		w, err := z.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate})
		require.NoError(t, err)
		_, err = w.Write(e.data)
		require.NoError(t, err)
	}
	require.NoError(t, z.Close())
	p := writeFile(t, t.TempDir(), "c.npz", b.Bytes())
	gx, gy, err := Load(p, Options{})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, y)
}

func int64s(y []int) []int64 {
	out := make([]int64, len(y))
	for i, v := range y {
		out[i] = int64(v)
	}
	return out
}

func TestNormalize(t *testing.T) {
	x := &linalg.Matrix32{Rows: 3, Cols: 2, Data: []float32{3, 4, 0, 0, -1e-3, 0}}
	require.NoError(t, Normalize(x))
	want := []float32{0.6, 0.8, 0, 0, -1, 0}
	for i := range want {
		// float32 rounding of v/‖x‖: half an ulp of 1.
		if math.Abs(float64(x.Data[i]-want[i])) > 0x1p-24 {
			t.Errorf("entry %d = %v, want %v", i, x.Data[i], want[i])
		}
	}
	bad := &linalg.Matrix32{Rows: 1, Cols: 1, Data: []float32{float32(math.NaN())}}
	if err := Normalize(bad); !errors.Is(err, linalg.ErrNonFinite) {
		t.Errorf("NaN: got %v, want ErrNonFinite", err)
	}
}

// TestMapAndNormalize checks both forms against Apply and Normalize done by
// hand, and that errors come through.
func TestMapAndNormalize(t *testing.T) {
	x, _ := testData(50, 12, 2, 3)
	f := &RandomReLU{Dim: 20, Seed: 9}
	want, err := f.Apply(x)
	require.NoError(t, err)
	require.NoError(t, Normalize(want))
	got, err := MapAndNormalize(x, f)
	require.NoError(t, err)
	if got.Rows != 50 || got.Cols != 20 || !equal32(got.Data, want.Data) {
		t.Error("mapped and normalised rows differ from Apply then Normalize")
	}
	plain := &linalg.Matrix32{Rows: 1, Cols: 2, Data: []float32{3, 4}}
	got, err = MapAndNormalize(plain, nil)
	require.NoError(t, err)
	if got != plain || math.Abs(float64(plain.Data[0])-0.6) > 0x1p-24 {
		t.Errorf("nil map: got %v, want the input normalised in place", got.Data)
	}
	bad := &linalg.Matrix32{Rows: 1, Cols: 12, Data: make([]float32, 12)}
	bad.Data[3] = float32(math.Inf(1))
	for _, m := range []*RandomReLU{nil, f} {
		if _, err := MapAndNormalize(bad, m); !errors.Is(err, linalg.ErrNonFinite) {
			t.Errorf("map %v: Inf entry gave %v, want ErrNonFinite", m, err)
		}
	}
}

func TestRandomReLU(t *testing.T) {
	x, _ := testData(300, 40, 2, 11)
	f := RandomReLU{Dim: 64, Seed: 5}
	a, err := f.Apply(x)
	require.NoError(t, err)
	if a.Rows != 300 || a.Cols != 64 {
		t.Fatalf("got %d×%d, want 300×64", a.Rows, a.Cols)
	}
	// Deterministic in the seed, different across seeds.
	b, err := f.Apply(x)
	require.NoError(t, err)
	if !equal32(a.Data, b.Data) {
		t.Error("same seed, different features")
	}
	c, err := RandomReLU{Dim: 64, Seed: 6}.Apply(x)
	require.NoError(t, err)
	if equal32(a.Data, c.Data) {
		t.Error("different seeds, same features")
	}
	// Against a naive loop over the weights.
	w, err := f.Weights(40)
	require.NoError(t, err)
	for i := range x.Rows {
		for k := range 64 {
			var s float64
			for j := range 40 {
				s += float64(x.Row(i)[j]) * w.At(k, j)
			}
			// Relative to the magnitude of the terms summed (float32 rounding
			// dominates: 2⁻²⁴ relative to the result, plus summation order).
			if got, want := float64(a.Row(i)[k]), math.Max(s, 0); math.Abs(got-want) > 1e-6*(1+math.Abs(want)) {
				t.Fatalf("(%d, %d) = %v, want %v", i, k, got, want)
			}
		}
	}
	// W has entries of variance 1/d_in: the sample variance of 40·64 draws
	// times 40 is within 5 standard errors (√(2/2560) ≈ 0.028) of 1.
	var ss float64
	for _, v := range w.RawMatrix().Data {
		ss += v * v
	}
	if v := ss / float64(40*64) * 40; math.Abs(v-1) > 5*0.028 {
		t.Errorf("variance × d_in = %.3f, want about 1", v)
	}
	// The stream version gives the same rows.
	p := filepath.Join(t.TempDir(), "a.npz")
	require.NoError(t, WriteNPZ(p, x, nil))
	s, err := Open(p, Options{Unlabeled: true})
	require.NoError(t, err)
	ms, err := f.Stream(s)
	require.NoError(t, err)
	defer ms.Close()
	got, _, err := ReadAll(ms)
	require.NoError(t, err)
	if !equal32(got.Data, a.Data) {
		t.Error("RandomReLU.Stream differs from Apply")
	}
	if _, err := (RandomReLU{}).Apply(x); err == nil {
		t.Error("Dim 0: no error")
	}
}

// TestMapClip streams rows clipped by dp.ClipRows.
func TestMapClip(t *testing.T) {
	x, y := testData(50, 8, 3, 12)
	p := filepath.Join(t.TempDir(), "a.tfrecord")
	require.NoError(t, WriteTFRecord(p, x, y))
	s, err := Open(p, Options{})
	require.NoError(t, err)
	clipped := Map(s, s.Dim(), func(b *linalg.Matrix32) (*linalg.Matrix32, error) {
		_, err := dp.ClipRows(b, 0.5)
		return b, err
	})
	defer clipped.Close()
	gx, gy, err := ReadAll(clipped)
	require.NoError(t, err)
	if !equalInts(gy, y) {
		t.Error("labels changed")
	}
	for i := range gx.Rows {
		var s float64
		for _, v := range gx.Row(i) {
			s += float64(v) * float64(v)
		}
		if math.Sqrt(s) > 0.5 {
			t.Errorf("row %d has norm %v > 0.5", i, math.Sqrt(s))
		}
	}
}
