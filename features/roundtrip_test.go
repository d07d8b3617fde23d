package features

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"codeberg.org/sbinet/npyio/npy"
	"codeberg.org/sbinet/npyio/npz"
	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/linalg"
)

// testData returns an n×d matrix of seeded values and labels in [0, k).
func testData(n, d, k int, seed uint64) (*linalg.Matrix32, []int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := linalg.NewMatrix32(n, d)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	y := make([]int, n)
	for i := range y {
		y[i] = rng.IntN(k)
	}
	return x, y
}

// requireSame fails unless x, y equal wantX, wantY exactly.
func requireSame(t *testing.T, x *linalg.Matrix32, y []int, wantX *linalg.Matrix32, wantY []int) {
	t.Helper()
	if x.Rows != wantX.Rows || x.Cols != wantX.Cols {
		t.Fatalf("got %d×%d, want %d×%d", x.Rows, x.Cols, wantX.Rows, wantX.Cols)
	}
	if !slices.Equal(x.Data, wantX.Data) {
		t.Errorf("features differ")
	}
	if !slices.Equal(y, wantY) {
		t.Errorf("got labels %v, want %v", head(y), head(wantY))
	}
}

func head(y []int) []int { return y[:min(len(y), 10)] }

func TestNPZRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x, y := testData(257, 13, 10, 1)
	path := filepath.Join(dir, "f.npz")
	require.NoError(t, WriteNPZ(path, x, y))
	gx, gy, err := Load(path, Options{})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, y)

	// npyio reads what WriteNPZ wrote, with the dtypes and shapes promised.
	r, err := npz.Open(path)
	require.NoError(t, err)
	defer r.Close()
	if got := r.Header("features.npy").Descr; got.Type != "'<f4'" && got.Type != "<f4" || !slices.Equal(got.Shape, []int{257, 13}) {
		t.Errorf("features header %+v, want <f4 (257, 13)", got)
	}
	var labels []int64
	require.NoError(t, r.Read("labels.npy", &labels))
	for i, l := range labels {
		if int(l) != y[i] {
			t.Fatalf("npyio label %d = %d, want %d", i, l, y[i])
		}
	}
	if h := r.Header("labels.npy"); !slices.Equal(h.Descr.Shape, []int{257}) {
		t.Errorf("labels shape %v, want (257,)", h.Descr.Shape)
	}

	// Unlabelled.
	require.NoError(t, WriteNPZ(path, x, nil))
	gx, gy, err = Load(path, Options{Unlabeled: true})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, nil)
	_, _, err = Load(path, Options{})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("npz without labels: got %v, want ErrFormat", err)
	}
}

// TestNPYDtypes writes arrays of every supported dtype with npyio and reads
// them back.
func TestNPYDtypes(t *testing.T) {
	dir := t.TempDir()
	x, y := testData(50, 4, 7, 2)
	write := func(name string, v any) string {
		t.Helper()
		p := filepath.Join(dir, name)
		var b bytes.Buffer
		require.NoError(t, npy.Write(&b, v))
		require.NoError(t, os.WriteFile(p, b.Bytes(), 0o644))
		return p
	}
	rows32 := make([][]float32, x.Rows)
	rows64 := make([][]float64, x.Rows)
	for i := range rows32 {
		rows32[i] = x.Row(i)
		for _, v := range x.Row(i) {
			rows64[i] = append(rows64[i], float64(v))
		}
	}
	feats := map[string]string{
		"f4": write("x4.npy", rows32),
		"f8": write("x8.npy", rows64),
	}
	labelFiles := map[string]string{}
	mk := func(name string, v any) { labelFiles[name] = write("y"+name+".npy", v) }
	var (
		i1 []int8
		i2 []int16
		i4 []int32
		i8 []int64
		u1 []uint8
		u2 []uint16
		u4 []uint32
		u8 []uint64
		f4 []float32
		f8 []float64
		c  [][]int64
	)
	for _, l := range y {
		i1, i2, i4, i8 = append(i1, int8(l)), append(i2, int16(l)), append(i4, int32(l)), append(i8, int64(l))
		u1, u2, u4, u8 = append(u1, uint8(l)), append(u2, uint16(l)), append(u4, uint32(l)), append(u8, uint64(l))
		f4, f8 = append(f4, float32(l)), append(f8, float64(l))
		c = append(c, []int64{int64(l)})
	}
	mk("i1", i1)
	mk("i2", i2)
	mk("i4", i4)
	mk("i8", i8)
	mk("u1", u1)
	mk("u2", u2)
	mk("u4", u4)
	mk("u8", u8)
	mk("f4", f4)
	mk("f8", f8)
	mk("col", c)
	for fn, fp := range feats {
		for ln, lp := range labelFiles {
			t.Run(fn+"/"+ln, func(t *testing.T) {
				gx, gy, err := Load(fp, Options{LabelFile: lp})
				require.NoError(t, err)
				requireSame(t, gx, gy, x, y)
			})
		}
	}
	gx, gy, err := Load(feats["f4"], Options{})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, nil)
}

func TestTFRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	x, y := testData(300, 9, 5, 3)
	path := filepath.Join(dir, "train.tfrecord")
	require.NoError(t, WriteTFRecord(path, x, y))
	gx, gy, err := Load(path, Options{})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, y)

	// Sharded, with custom names, read through a glob.
	for s := range 3 {
		f, err := os.Create(filepath.Join(dir, "shard.tfr-0000"+string(rune('0'+s))+"-of-00003"))
		require.NoError(t, err)
		w := NewTFRecordWriter(f)
		w.Features, w.Labels = "emb", "cls"
		for i := s * 100; i < (s+1)*100; i++ {
			require.NoError(t, w.Write(x.Row(i), y[i]))
		}
		require.NoError(t, f.Close())
	}
	gx, gy, err = Load(filepath.Join(dir, "shard.tfr*"), Options{Features: "emb", Labels: "cls"})
	require.NoError(t, err)
	requireSame(t, gx, gy, x, y)
	_, _, err = Load(filepath.Join(dir, "shard.tfr*"), Options{})
	if !errors.Is(err, ErrFormat) {
		t.Errorf("default names on custom file: got %v, want ErrFormat", err)
	}
}

func TestStreamEOF(t *testing.T) {
	x, y := testData(10, 3, 2, 4)
	path := filepath.Join(t.TempDir(), "a.npz")
	require.NoError(t, WriteNPZ(path, x, y))
	s, err := Open(path, Options{})
	require.NoError(t, err)
	defer s.Close()
	if l, ok := s.(Lener); !ok || l.Len() != 10 {
		t.Errorf("Len: got %v, want 10", s)
	}
	n := 0
	for {
		b, _, err := s.Next(4)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		n += b.Rows
	}
	if n != 10 {
		t.Errorf("got %d rows, want 10", n)
	}
	if _, _, err := s.Next(4); err != io.EOF {
		t.Errorf("after EOF: got %v, want io.EOF", err)
	}
}
