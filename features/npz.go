package features

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/dpopt/dpopt/internal/atomicfile"
	"github.com/dpopt/dpopt/linalg"
)

// arrayStream streams rows from a features array and, optionally, a labels
// array: the stream of .npy and .npz files.
type arrayStream struct {
	x, y    *npyArray
	classes int
	closers []io.Closer
	hint    bool // the row count is backed by bytes on disk
	err     error
}

func (s *arrayStream) Dim() int { return s.x.cols }
func (s *arrayStream) Len() int { return s.x.rows }
func (s *arrayStream) sizeHint() int {
	if !s.hint {
		return 0
	}
	return s.x.rows
}

func (s *arrayStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	if err := checkMaxRows(maxRows); err != nil {
		return nil, nil, err
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	n := min(maxRows, s.x.rows-s.x.done)
	if n == 0 {
		s.err = s.x.finish()
		if s.err == nil && s.y != nil {
			s.err = s.y.finish()
		}
		if s.err == nil {
			s.err = io.EOF
		}
		return nil, nil, s.err
	}
	data, err := s.x.readFeatures(n)
	if err != nil {
		s.err = err
		return nil, nil, err
	}
	var y []int
	if s.y != nil {
		if y, err = s.y.readLabels(n, s.classes); err != nil {
			s.err = err
			return nil, nil, err
		}
	}
	x := &linalg.Matrix32{Rows: n, Cols: s.x.cols, Data: data}
	return x, y, nil
}

func (s *arrayStream) Close() error {
	var first error
	for _, c := range s.closers {
		if err := c.Close(); err != nil && first == nil {
			first = fmt.Errorf("features: %w", err)
		}
	}
	s.closers = nil
	if s.err == nil {
		s.err = errClosed
	}
	return first
}

// pair checks that the features and labels have the same number of rows.
func (s *arrayStream) pair() error {
	if s.y != nil && s.y.rows != s.x.rows {
		return wrapf(linalg.ErrShape, "%d rows of features (%s) and %d labels (%s)", s.x.rows, s.x.name, s.y.rows, s.y.name)
	}
	return nil
}

// openNPY opens a .npy file of features and, with o.LabelFile, one of labels.
func openNPY(path string, o Options) (Stream, error) {
	s := &arrayStream{classes: o.Classes, hint: true}
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, f)
	if s.x, err = newFeatureArray(path, f, size); err != nil {
		s.Close()
		return nil, err
	}
	if o.LabelFile != "" && !o.Unlabeled {
		g, size, err := openSized(o.LabelFile)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.closers = append(s.closers, g)
		if s.y, err = newLabelArray(o.LabelFile, g, size); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.pair(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openNPZ opens a .npz archive (as written by numpy.savez, savez_compressed
// or WriteNPZ) and streams its features and labels arrays side by side.
func openNPZ(path string, o Options) (Stream, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	s, err := newNPZStream(path, f, size, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.closers = append(s.closers, f)
	return s, nil
}

// newNPZStream reads the archive of size bytes in r.
func newNPZStream(name string, r io.ReaderAt, size int64, o Options) (*arrayStream, error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, readErr(name, err)
	}
	find := func(what, key string, defaults ...string) (*zip.File, error) {
		keys := defaults
		if key != "" {
			keys = []string{key}
		}
		for _, k := range keys {
			for _, f := range z.File {
				if f.Name == k+".npy" || f.Name == k {
					return f, nil
				}
			}
		}
		return nil, wrapf(ErrFormat, "%s: no %s array named %s (set Options.%s)", name, what, strings.Join(keys, " or "), map[string]string{"features": "Features", "labels": "Labels"}[what])
	}
	s := &arrayStream{classes: o.Classes, hint: true}
	open := func(f *zip.File, label bool) (*npyArray, error) {
		// The entry's declared size is checked by archive/zip when the
		// entry is read to its end (npyArray.finish); it must also fit the
		// file unless the entry is compressed.
		usize := f.UncompressedSize64
		if usize > math.MaxInt64 {
			return nil, wrapf(ErrFormat, "%s: entry %s of %d bytes", name, f.Name, usize)
		}
		if f.Method == zip.Store && (usize != f.CompressedSize64 || int64(usize) > size) {
			return nil, wrapf(ErrFormat, "%s: stored entry %s claims %d bytes", name, f.Name, usize)
		}
		if f.Method != zip.Store {
			s.hint = false // the data may be much larger than the file: grow as it arrives
		}
		rc, err := f.Open()
		if err != nil {
			return nil, readErr(name+": "+f.Name, err)
		}
		s.closers = append(s.closers, rc)
		entry := name + ":" + f.Name
		if label {
			return newLabelArray(entry, rc, int64(usize))
		}
		return newFeatureArray(entry, rc, int64(usize))
	}
	fx, err := find("features", o.Features, "features", "x")
	if err != nil {
		return nil, err
	}
	if s.x, err = open(fx, false); err != nil {
		s.Close()
		return nil, err
	}
	if !o.Unlabeled {
		fy, err := find("labels", o.Labels, "labels", "y")
		if err != nil {
			s.Close()
			return nil, err
		}
		if s.y, err = open(fy, true); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.pair(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// WriteNPZ writes x as the float32 array "features" (shape (rows, cols))
// and, unless labels is nil, labels as the int64 array "labels" (shape
// (rows,)) to a .npz archive at path, readable by numpy.load. The entries
// are stored uncompressed, as numpy.savez does, in .npy format version 1.0. The
// file is written to a temporary file and renamed, so path never holds a
// partial archive.
//
// It returns an error wrapping linalg.ErrEmpty, ErrShape or ErrNonFinite
// for bad x, ErrShape if len(labels) ≠ x.Rows, and linalg.ErrLabel for a
// label outside [0, MaxLabel].
func WriteNPZ(path string, x *linalg.Matrix32, labels []int) error {
	if err := checkWrite(x, labels); err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		z := zip.NewWriter(w)
		entry := func(name string, shape string, descr string, body func(w *bufio.Writer) error) error {
			ew, err := z.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: zip.Store})
			if err != nil {
				return err
			}
			bw := bufio.NewWriterSize(ew, 1<<16)
			if _, err := bw.Write(encodeNPYHeader(descr, shape)); err != nil {
				return err
			}
			if err := body(bw); err != nil {
				return err
			}
			return bw.Flush()
		}
		// The payload is written directly in little-endian order: going
		// through npyio's reflection cost about 5 µs a value (20 CPU-minutes
		// for a 1 GB file).
		err := entry("features", fmt.Sprintf("(%d, %d)", x.Rows, x.Cols), "<f4", func(w *bufio.Writer) error {
			var buf [4]byte
			for _, v := range x.Data {
				binary.LittleEndian.PutUint32(buf[:], math.Float32bits(v))
				if _, err := w.Write(buf[:]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("features: write %s: %w", path, err)
		}
		if labels != nil {
			err := entry("labels", fmt.Sprintf("(%d,)", len(labels)), "<i8", func(w *bufio.Writer) error {
				var buf [8]byte
				for _, l := range labels {
					binary.LittleEndian.PutUint64(buf[:], uint64(int64(l)))
					if _, err := w.Write(buf[:]); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("features: write %s: %w", path, err)
			}
		}
		if err := z.Close(); err != nil {
			return fmt.Errorf("features: write %s: %w", path, err)
		}
		return nil
	})
}

// encodeNPYHeader returns a version 1.0 .npy header for a C-ordered array of the
// given dtype descr (e.g. "<f4") and shape (a Python tuple, e.g. "(3, 4)"),
// padded with spaces and a newline so the data starts at a multiple of 64 bytes.
func encodeNPYHeader(descr, shape string) []byte {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
	const prefix = 10 // magic (6), version (2), header length (2)
	total := (prefix + len(dict) + 1 + 63) / 64 * 64
	h := make([]byte, 0, total)
	h = append(h, npyMagic+"\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(total-prefix))
	h = append(h, dict...)
	for len(h) < total-1 {
		h = append(h, ' ')
	}
	return append(h, '\n')
}

// checkWrite validates data before it is written.
func checkWrite(x *linalg.Matrix32, labels []int) error {
	if err := x.Check(); err != nil {
		return fmt.Errorf("features: write: %w", err)
	}
	if labels != nil && len(labels) != x.Rows {
		return wrapf(linalg.ErrShape, "write: %d labels for %d rows", len(labels), x.Rows)
	}
	for i, l := range labels {
		if l < 0 || l > MaxLabel {
			return wrapf(linalg.ErrLabel, "write: label %d of row %d, want [0, %d]", l, i, MaxLabel)
		}
	}
	return nil
}
