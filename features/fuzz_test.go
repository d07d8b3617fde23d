package features

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// drain reads a stream to its end in small blocks and checks the blocks'
// invariants; it returns the number of rows read.
func drain(t *testing.T, s Stream) int {
	t.Helper()
	rows := 0
	for {
		x, y, err := s.Next(3)
		if errors.Is(err, io.EOF) {
			return rows
		}
		if err != nil {
			return rows
		}
		if x.Rows < 1 || x.Rows > 3 || x.Cols != s.Dim() || len(x.Data) != x.Rows*x.Cols {
			t.Fatalf("bad block %d×%d with %d values (Dim %d)", x.Rows, x.Cols, len(x.Data), s.Dim())
		}
		if y != nil && len(y) != x.Rows {
			t.Fatalf("%d labels for %d rows", len(y), x.Rows)
		}
		if err := x.Check(); err != nil {
			t.Fatalf("delivered bad data: %v", err)
		}
		for _, l := range y {
			if l < 0 || l > MaxLabel {
				t.Fatalf("delivered label %d", l)
			}
		}
		rows += x.Rows
	}
}

// bounded fails if a reader's output exceeds what size bytes of input can
// hold (at least one byte per value in every format).
func bounded(t *testing.T, rows, dim, size int) {
	t.Helper()
	if rows*dim > size {
		t.Fatalf("%d×%d values from %d bytes", rows, dim, size)
	}
}

func FuzzReadNPY(f *testing.F) {
	f.Add(npyFile(1, npyDict("<f4", "(2, 2)"), f32s(1, 2, 3, 4)))
	f.Add(npyFile(2, npyDict(">f8", "(1, 3)"), []byte{0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0}))
	f.Add(npyFile(1, "{'shape': (2L, 1L), 'fortran_order': True, 'descr': '<f4'}", f32s(1, 2)))
	f.Add(npyFile(1, npyDict("<f4", "(1000000000000, 2)"), f32s(1, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := newFeatureArray("fuzz.npy", bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		s := &arrayStream{x: a}
		bounded(t, drain(t, s), s.Dim(), len(b))
	})
}

func FuzzReadNPZ(f *testing.F) {
	x := npyFile(1, npyDict("<f4", "(2, 2)"), f32s(1, 2, 3, 4))
	y := npyFile(1, npyDict("<i8", "(2,)"), i64s(0, 1))
	f.Add(zipFile(f, "features.npy", x, "labels.npy", y))
	f.Add(zipFile(f, "x.npy", x, "y.npy", npyFile(1, npyDict("<f8", "(2, 1)"), f64s(1, 0))))
	f.Add(zipFile(f, "x.npy", x))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := newNPZStream("fuzz.npz", bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			return
		}
		defer s.Close()
		rows := drain(t, s)
		// Stored entries hold a byte per value; deflated ones may expand
		// up to 1032 times.
		bounded(t, rows, s.Dim(), 1032*len(b))
	})
}

func FuzzReadTFRecord(f *testing.F) {
	f.Add(tfrFrame(example(entry("repr", floatFeature(1, 2)), entry("label", intFeature(3)))), false)
	f.Add(append(tfrFrame(example(entry("repr", floatFeatureUnpacked(1, 2)), entry("label", intFeatureUnpacked(0)))),
		tfrFrame(example(entry("label", intFeature(1)), entry("repr", floatFeature(5, 6))))...), false)
	f.Add(tfrFrame([]byte{0x0a, 0x02, 0x0a, 0x00}), false)
	// Unframed: the input is one record's payload, framed with valid CRCs
	// so that mutations reach the tf.train.Example decoder.
	f.Add(example(entry("repr", floatFeature(1, 2)), entry("label", intFeature(3))), true)
	f.Add(example(entry("label", intFeatureUnpacked(2)), entry("repr", floatFeatureUnpacked(-1))), true)
	f.Fuzz(func(t *testing.T, b []byte, frame bool) {
		if frame {
			b = append(tfrFrame(b), tfrFrame(b)...)
		}
		s, err := newTFRStream("fuzz.tfrecord", bytes.NewReader(b), int64(len(b)), Options{})
		if err != nil {
			return
		}
		bounded(t, drain(t, s), s.Dim(), len(b))
	})
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("1,2,3\n0,4.5,-6e-3\n"), false, -1)
	f.Add([]byte("y,a,b\n1,2,3\n"), true, 0)
	f.Add([]byte("# c\n\"1\",2\n"), false, 1)
	f.Fuzz(func(t *testing.T, b []byte, header bool, labelCol int) {
		o := Options{CSV: CSVOptions{Header: header, LabelColumn: labelCol}}
		s, err := newCSVStream("fuzz.csv", bytes.NewReader(b), o)
		if err != nil {
			return
		}
		bounded(t, drain(t, s), s.Dim(), len(b))
	})
}
