package features

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/linalg"
)

func TestMaskedCRC(t *testing.T) {
	// The CRC-32C check value (RFC 3720, B.4): "123456789" → 0xe3069283.
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("CRC-32C check value %#x, want 0xe3069283", got)
	}
	for _, b := range [][]byte{nil, []byte("a"), []byte("123456789"), bytes.Repeat([]byte{0xff}, 1000)} {
		want := binary.LittleEndian.Uint32(tfrFrame(b)[len(b)+12:])
		if got := maskedCRC(b); got != want {
			t.Errorf("maskedCRC(%q) = %#x, want %#x", b, got, want)
		}
	}
}

// TestTFRecordByteByByte reads records whose Examples and framing are built
// in the test from the specifications, packed and unpacked.
func TestTFRecordByteByByte(t *testing.T) {
	dir := t.TempDir()
	var file []byte
	file = append(file, tfrFrame(example(entry("repr", floatFeature(1, 2)), entry("label", intFeature(3))))...)
	file = append(file, tfrFrame(example(entry("label", intFeatureUnpacked(0)), entry("repr", floatFeatureUnpacked(-0.5, 4))))...)
	// An unknown field, an extra bytes_list feature, the Features message
	// split in two (merged by protobuf rules), and a key given twice (the
	// last value wins).
	file = append(file, tfrFrame(append(
		example(entry("image", msg(tagBytesList, msg(0x0a, []byte("png")))), entry("repr", floatFeature(9, 9))),
		append([]byte{0x10, 0x2a}, example(entry("repr", floatFeature(5, 6)), entry("label", intFeature(127)))...)...))...)
	path := writeFile(t, dir, "hand.tfrecord", file)
	x, y, err := Load(path, Options{})
	require.NoError(t, err)
	want := []float32{1, 2, -0.5, 4, 5, 6}
	if x.Rows != 3 || x.Cols != 2 || !equal32(x.Data, want) {
		t.Errorf("got %d×%d %v, want 3×2 %v", x.Rows, x.Cols, x.Data, want)
	}
	if !equalInts(y, []int{3, 0, 127}) {
		t.Errorf("got labels %v, want [3 0 127]", y)
	}

	// The writer produces exactly the hand-built encoding of the first record.
	var b bytes.Buffer
	require.NoError(t, NewTFRecordWriter(&b).Write([]float32{1, 2}, 3))
	if want := tfrFrame(example(entry("label", intFeature(3)), entry("repr", floatFeature(1, 2)))); !bytes.Equal(b.Bytes(), want) {
		t.Errorf("writer bytes\n% x\nwant\n% x", b.Bytes(), want)
	}
}

func equal32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// badCase is a file that must be rejected with an error wrapping want.
type badCase struct {
	name string
	file string // file name: its extension picks the format
	data []byte
	opts Options
	want error
}

func badCases(t testing.TB) []badCase {
	x22 := f32s(1, 2, 3, 4)
	good := tfrFrame(example(entry("repr", floatFeature(1, 2)), entry("label", intFeature(3))))
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x40
		return c
	}
	hugeLen := func() []byte { // a valid length CRC on a length of 2⁶⁰
		b := tfrFrame([]byte("x"))
		binary.LittleEndian.PutUint64(b, 1<<60)
		copy(b[8:12], tfrFrame(b[:8])[8+12:8+16]) // CRC of the new length bytes
		return b
	}
	npz := func(entries ...any) []byte { return zipFile(t, entries...) }
	goodX := npyFile(1, npyDict("<f4", "(2, 2)"), x22)
	goodY := npyFile(1, npyDict("<i8", "(2,)"), i64s(0, 1))
	badCRC := npz("features.npy", goodX, "labels.npy", goodY)
	// Flip a byte of the stored features data (it follows the 30-byte local
	// header and the entry name).
	badCRC = flip(badCRC, 30+len("features.npy")+len(goodX)-1)
	return []badCase{
		// .npy structure
		{"npy/empty file", "a.npy", nil, Options{}, ErrTruncated},
		{"npy/bad magic", "a.npy", []byte("\x93NUMPX\x01\x00\x10\x00{}"), Options{}, ErrFormat},
		{"npy/version 9", "a.npy", npyFile(9, npyDict("<f4", "(2, 2)"), x22), Options{}, ErrFormat},
		{"npy/header length lies", "a.npy", append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\x7f"), "{'descr'"...), Options{}, ErrTruncated},
		{"npy/header too long", "a.npy", npyFile(2, strings.Repeat(" ", 70000)+npyDict("<f4", "(1, 1)"), f32s(1)), Options{}, ErrFormat},
		{"npy/no dict", "a.npy", npyFile(1, "hello", x22), Options{}, ErrFormat},
		{"npy/unclosed dict", "a.npy", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2)", x22), Options{}, ErrFormat},
		{"npy/missing shape", "a.npy", npyFile(1, "{'descr': '<f4', 'fortran_order': False}", x22), Options{}, ErrFormat},
		{"npy/unknown key", "a.npy", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), 'x': 1}", x22), Options{}, ErrFormat},
		{"npy/bad fortran_order", "a.npy", npyFile(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 2)}", x22), Options{}, ErrFormat},
		{"npy/bad shape", "a.npy", npyFile(1, npyDict("<f4", "(2, -2)"), x22), Options{}, ErrFormat},
		{"npy/structured", "a.npy", npyFile(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 2), }", x22), Options{}, ErrFormat},
		{"npy/int features", "a.npy", npyFile(1, npyDict("<i4", "(2, 2)"), x22), Options{}, ErrFormat},
		{"npy/complex", "a.npy", npyFile(1, npyDict("<c8", "(2, 1)"), x22), Options{}, ErrFormat},
		{"npy/float16", "a.npy", npyFile(1, npyDict("<f2", "(2, 4)"), x22), Options{}, ErrFormat},
		{"npy/1-D features", "a.npy", npyFile(1, npyDict("<f4", "(4,)"), x22), Options{}, linalg.ErrShape},
		{"npy/no columns", "a.npy", npyFile(1, npyDict("<f4", "(4, 0)"), nil), Options{}, linalg.ErrEmpty},
		{"npy/no rows", "a.npy", npyFile(1, npyDict("<f4", "(0, 4)"), nil), Options{}, linalg.ErrEmpty},
		{"npy/fortran", "a.npy", npyFile(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", x22), Options{}, ErrFormat},
		{"npy/truncated data", "a.npy", npyFile(1, npyDict("<f4", "(2, 2)"), x22[:15]), Options{}, ErrTruncated},
		{"npy/trailing bytes", "a.npy", npyFile(1, npyDict("<f4", "(2, 2)"), append(x22, 0)), Options{}, ErrFormat},
		{"npy/1e12 rows", "a.npy", npyFile(1, npyDict("<f4", "(1000000000000, 2)"), x22), Options{}, ErrTruncated},
		{"npy/shape overflows", "a.npy", npyFile(1, npyDict("<f4", "(4294967296, 4294967296, 16)"), x22), Options{}, ErrFormat},
		// .npy content
		{"npy/NaN", "a.npy", npyFile(1, npyDict("<f4", "(2, 2)"), f32s(1, float32(math.NaN()), 3, 4)), Options{}, linalg.ErrNonFinite},
		{"npy/+Inf", "a.npy", npyFile(1, npyDict("<f8", "(2, 2)"), f64s(1, 2, math.Inf(1), 4)), Options{}, linalg.ErrNonFinite},
		{"npy/huge", "a.npy", npyFile(1, npyDict("<f8", "(2, 2)"), f64s(1, 2, 3, -1e31)), Options{}, linalg.ErrNonFinite},
		{"npy/labels not integers", "a.npy", goodX, Options{LabelFile: "y.npy"}, linalg.ErrLabel},
		// .npz
		{"npz/not a zip", "a.npz", []byte("PK\x03\x04 not really"), Options{}, ErrFormat},
		{"npz/truncated zip", "a.npz", npz("features.npy", goodX, "labels.npy", goodY)[:100], Options{}, ErrFormat},
		{"npz/CRC mismatch", "a.npz", badCRC, Options{}, ErrChecksum},
		{"npz/no features", "a.npz", npz("feats.npy", goodX, "labels.npy", goodY), Options{}, ErrFormat},
		{"npz/no labels", "a.npz", npz("x.npy", goodX), Options{}, ErrFormat},
		{"npz/named features missing", "a.npz", npz("x.npy", goodX, "y.npy", goodY), Options{Features: "emb"}, ErrFormat},
		{"npz/row mismatch", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<i8", "(3,)"), i64s(0, 1, 2))), Options{}, linalg.ErrShape},
		{"npz/labels 2-D", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<i8", "(2, 2)"), i64s(0, 1, 2, 3))), Options{}, linalg.ErrShape},
		{"npz/bool labels", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("|b1", "(2,)"), []byte{0, 1})), Options{}, ErrFormat},
		{"npz/label 1.5", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<f8", "(2,)"), f64s(0, 1.5))), Options{}, linalg.ErrLabel},
		{"npz/label NaN", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<f4", "(2,)"), f32s(0, float32(math.NaN())))), Options{}, linalg.ErrLabel},
		{"npz/label -1", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<i8", "(2,)"), i64s(0, -1))), Options{}, linalg.ErrLabel},
		{"npz/label 2^40", "a.npz", npz("x.npy", goodX, "y.npy", npyFile(1, npyDict("<u8", "(2,)"), i64s(0, 1<<40))), Options{}, linalg.ErrLabel},
		{"npz/label ≥ Classes", "a.npz", npz("x.npy", goodX, "y.npy", goodY), Options{Classes: 1}, linalg.ErrLabel},
		{"npz/1e12 rows", "a.npz", npz("x.npy", npyFile(1, npyDict("<f4", "(1000000000000, 2)"), x22), "y.npy", goodY), Options{}, ErrTruncated},
		// TFRecord
		{"tfr/empty", "a.tfrecord", nil, Options{}, linalg.ErrEmpty},
		{"tfr/length CRC", "a.tfrecord", flip(good, 9), Options{}, ErrChecksum},
		{"tfr/data CRC", "a.tfrecord", flip(good, len(good)-1), Options{}, ErrChecksum},
		{"tfr/data corrupted", "a.tfrecord", flip(good, 20), Options{}, ErrChecksum},
		{"tfr/truncated header", "a.tfrecord", append(bytes.Clone(good), good[:7]...), Options{}, ErrTruncated},
		{"tfr/truncated data", "a.tfrecord", append(bytes.Clone(good), good[:len(good)-3]...), Options{}, ErrTruncated},
		{"tfr/length lies", "a.tfrecord", hugeLen(), Options{}, ErrTruncated},
		{"tfr/not an Example", "a.tfrecord", tfrFrame([]byte{0x0a, 0x7f, 1}), Options{}, ErrFormat},
		{"tfr/no repr", "a.tfrecord", tfrFrame(example(entry("label", intFeature(3)))), Options{}, ErrFormat},
		{"tfr/no label", "a.tfrecord", tfrFrame(example(entry("repr", floatFeature(1)))), Options{}, ErrFormat},
		{"tfr/int repr", "a.tfrecord", tfrFrame(example(entry("repr", intFeature(1)), entry("label", intFeature(3)))), Options{}, ErrFormat},
		{"tfr/two labels", "a.tfrecord", tfrFrame(example(entry("repr", floatFeature(1)), entry("label", intFeature(3, 4)))), Options{}, ErrFormat},
		{"tfr/odd packed floats", "a.tfrecord", tfrFrame(example(entry("repr", msg(tagFloatList, msg(tagPacked, []byte{1, 2, 3}))), entry("label", intFeature(3)))), Options{}, ErrFormat},
		{"tfr/dimension changes", "a.tfrecord", append(bytes.Clone(good), tfrFrame(example(entry("repr", floatFeature(1, 2, 3)), entry("label", intFeature(3))))...), Options{}, linalg.ErrShape},
		{"tfr/NaN", "a.tfrecord", tfrFrame(example(entry("repr", floatFeature(1, float32(math.Inf(-1)))), entry("label", intFeature(3)))), Options{}, linalg.ErrNonFinite},
		{"tfr/negative label", "a.tfrecord", tfrFrame(example(entry("repr", floatFeature(1)), entry("label", msg(tagInt64List, msg(tagPacked, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}))))), Options{}, linalg.ErrLabel},
		{"tfr/empty repr", "a.tfrecord", tfrFrame(example(entry("repr", floatFeature()), entry("label", intFeature(3)))), Options{}, linalg.ErrEmpty},
		// CSV
		{"csv/empty", "a.csv", nil, Options{}, linalg.ErrEmpty},
		{"csv/ragged", "a.csv", []byte("1,2,3\n0,1\n"), Options{}, linalg.ErrShape},
		{"csv/not a number", "a.csv", []byte("1,2,3\n0,x,1\n"), Options{}, ErrFormat},
		{"csv/label 1.5", "a.csv", []byte("1.5,2,3\n"), Options{}, linalg.ErrLabel},
		{"csv/label word", "a.csv", []byte("cat,2,3\n"), Options{}, linalg.ErrLabel},
		{"csv/NaN", "a.csv", []byte("1,NaN,3\n"), Options{}, linalg.ErrNonFinite},
		{"csv/Inf", "a.csv", []byte("1,2,-Inf\n"), Options{}, linalg.ErrNonFinite},
		{"csv/huge", "a.csv", []byte("1,2,1e31\n"), Options{}, linalg.ErrNonFinite},
		{"csv/bare quote", "a.csv", []byte("1,2\"x,3\n"), Options{}, ErrFormat},
		{"csv/no label column", "a.csv", []byte("a,b\n1,2\n"), Options{CSV: CSVOptions{LabelName: "y"}}, ErrFormat},
		{"csv/label column out of range", "a.csv", []byte("1,2\n"), Options{CSV: CSVOptions{LabelColumn: 2}}, linalg.ErrShape},
		{"csv/only labels", "a.csv", []byte("1\n2\n"), Options{}, linalg.ErrEmpty},
		{"csv/header only", "a.csv", []byte("y,a\n"), Options{CSV: CSVOptions{Header: true}}, linalg.ErrEmpty},
		// dispatch
		{"unknown extension", "a.dat", []byte("1,2\n"), Options{}, ErrFormat},
	}
}

// TestBadFiles checks that every malformed file gets an error wrapping the
// right sentinel, with no panic and no result.
func TestBadFiles(t *testing.T) {
	for _, c := range badCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, c.file, c.data)
			if c.opts.LabelFile != "" {
				c.opts.LabelFile = writeFile(t, dir, c.opts.LabelFile, npyFile(1, npyDict("<f4", "(2,)"), f32s(1, 0.25)))
			}
			x, y, err := Load(path, c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, c.want)
			}
			if x != nil || y != nil {
				t.Errorf("got data with error %v", err)
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "features: ") {
				t.Errorf("error %q lacks the features: prefix", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, _, err := Load(filepath.Join(dir, "missing.npz"), Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v, want fs.ErrNotExist", err)
	}
	_, _, err = Load(filepath.Join(dir, "none*.tfrecord"), Options{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("glob without match: got %v, want fs.ErrNotExist", err)
	}
	var pe *accountant.ParamError
	if _, err := Open(filepath.Join(dir, "a.npy"), Options{Classes: -1}); !errors.As(err, &pe) {
		t.Errorf("Classes -1: got %v, want a ParamError", err)
	}
	x, y := testData(4, 3, 2, 5)
	require.NoError(t, WriteNPZ(filepath.Join(dir, "a.npz"), x, y))
	s, err := Open(filepath.Join(dir, "a.npz"), Options{})
	require.NoError(t, err)
	defer s.Close()
	if _, _, err := s.Next(0); !errors.As(err, &pe) {
		t.Errorf("Next(0): got %v, want a ParamError", err)
	}
	// Shards of different dimensions.
	require.NoError(t, WriteTFRecord(filepath.Join(dir, "s.tfr-0"), x, y))
	x2, y2 := testData(4, 5, 2, 6)
	require.NoError(t, WriteTFRecord(filepath.Join(dir, "s.tfr-1"), x2, y2))
	if _, _, err := Load(filepath.Join(dir, "s.tfr*"), Options{}); !errors.Is(err, linalg.ErrShape) {
		t.Errorf("shards of dimensions 3 and 5: got %v, want ErrShape", err)
	}
	// Writers validate.
	bad := &linalg.Matrix32{Rows: 1, Cols: 2, Data: []float32{1, float32(math.NaN())}}
	for name, write := range map[string]func(string, *linalg.Matrix32, []int) error{"npz": WriteNPZ, "tfrecord": WriteTFRecord} {
		p := filepath.Join(dir, "w."+name)
		if err := write(p, bad, []int{0}); !errors.Is(err, linalg.ErrNonFinite) {
			t.Errorf("%s writer, NaN: got %v, want ErrNonFinite", name, err)
		}
		if err := write(p, x, y[:3]); !errors.Is(err, linalg.ErrShape) {
			t.Errorf("%s writer, 3 labels for 4 rows: got %v, want ErrShape", name, err)
		}
		if err := write(p, x, []int{0, 1, -1, 0}); !errors.Is(err, linalg.ErrLabel) {
			t.Errorf("%s writer, label -1: got %v, want ErrLabel", name, err)
		}
		if _, err := filepath.Glob(p); err != nil {
			t.Fatal(err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*w."+name+"*")); len(m) != 0 {
			t.Errorf("%s writer left %v behind", name, m)
		}
	}
}

// TestLyingHeaderDoesNotAllocate opens files whose headers claim 10¹² rows
// and checks that the readers fail without allocating anything near that.
func TestLyingHeaderDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	x22 := f32s(1, 2, 3, 4)
	files := map[string][]byte{
		"a.npy": npyFile(1, npyDict("<f4", "(1000000000000, 2)"), x22),
		"a.npz": zipFile(t, "x.npy", npyFile(1, npyDict("<f4", "(1000000000000, 2)"), x22), "y.npy", npyFile(1, npyDict("<i8", "(1000000000000,)"), i64s(1))),
		"b.npy": append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"), x22...),
		"c.npz": lyingDeflated(t),
	}
	for name, b := range files {
		p := writeFile(t, dir, name, b)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := Load(p, Options{Unlabeled: true})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTruncated) {
			t.Errorf("%s: got %v, want ErrTruncated", name, err)
		}
		// 4 MiB is ample for the readers' buffers (64 KiB each) and the
		// flate decompressor.
		if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
			t.Errorf("%s: allocated %d bytes", name, got)
		}
	}
}

// lyingDeflated returns a .npz whose deflated features entry claims, in its
// .npy header and in the zip directory alike, one row of 2·10⁹ float64
// values (16 GB), while the compressed data holds 32 bytes.
func lyingDeflated(t *testing.T) []byte {
	hdr := npyFile(1, npyDict("<f8", "(1, 2000000000)"), nil)
	var comp bytes.Buffer
	fw, err := flate.NewWriter(&comp, flate.BestSpeed)
	require.NoError(t, err)
	_, err = fw.Write(append(hdr, f64s(1, 2, 3, 4)...))
	require.NoError(t, err)
	require.NoError(t, fw.Close())
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	w, err := z.CreateRaw(&zip.FileHeader{
		Name:               "x.npy",
		Method:             zip.Deflate,
		CompressedSize64:   uint64(comp.Len()),
		UncompressedSize64: uint64(len(hdr)) + 16_000_000_000,
	})
	require.NoError(t, err)
	_, err = w.Write(comp.Bytes())
	require.NoError(t, err)
	require.NoError(t, z.Close())
	return b.Bytes()
}
