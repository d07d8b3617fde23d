package features

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/dpopt/dpopt/internal/atomicfile"
	"github.com/dpopt/dpopt/linalg"
)

// TFRecord framing (https://www.tensorflow.org/tutorials/load_data/tfrecord):
// each record is
//
//	uint64 length (little-endian)
//	uint32 masked CRC32C of the 8 length bytes
//	byte   data[length]
//	uint32 masked CRC32C of the data
//
// where the mask of a CRC c is ((c >> 15) | (c << 17)) + 0xa282ead8.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC returns the masked CRC32C of b.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// maxRecord bounds a record's length; a tf.train.Example of 2²⁸ floats is
// already 1 GiB.
const maxRecord = 1 << 30

// recordReader reads TFRecord framing from a stream of known size.
type recordReader struct {
	name   string
	r      *bufio.Reader
	remain int64 // bytes not yet read from the stream
	off    int64 // offset of the next record, for messages
	buf    []byte
}

func newRecordReader(name string, r io.Reader, size int64) *recordReader {
	return &recordReader{name: name, r: bufio.NewReaderSize(r, 1<<16), remain: size}
}

// next returns the next record's data, valid until the following call, or
// io.EOF at a clean end of the stream.
func (rr *recordReader) next() ([]byte, error) {
	var hdr [12]byte
	n, err := io.ReadFull(rr.r, hdr[:])
	if n == 0 && err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, wrapf(ErrTruncated, "%s: record at byte %d: header ends early", rr.name, rr.off)
	}
	rr.remain -= 12
	if binary.LittleEndian.Uint32(hdr[8:]) != maskedCRC(hdr[:8]) {
		return nil, wrapf(ErrChecksum, "%s: record at byte %d: length CRC mismatch", rr.name, rr.off)
	}
	length := binary.LittleEndian.Uint64(hdr[:8])
	if length > uint64(max(rr.remain-4, 0)) {
		return nil, wrapf(ErrTruncated, "%s: record at byte %d claims %d bytes, %d remain", rr.name, rr.off, length, max(rr.remain-4, 0))
	}
	if length > maxRecord {
		return nil, wrapf(ErrFormat, "%s: record at byte %d of %d bytes, more than %d", rr.name, rr.off, length, maxRecord)
	}
	if uint64(cap(rr.buf)) < length+4 {
		rr.buf = make([]byte, length+4)
	}
	b := rr.buf[:length+4]
	if _, err := io.ReadFull(rr.r, b); err != nil {
		return nil, wrapf(ErrTruncated, "%s: record at byte %d: data ends early", rr.name, rr.off)
	}
	data := b[:length]
	if binary.LittleEndian.Uint32(b[length:]) != maskedCRC(data) {
		return nil, wrapf(ErrChecksum, "%s: record at byte %d: data CRC mismatch", rr.name, rr.off)
	}
	rr.remain -= int64(length) + 4
	rr.off += int64(length) + 16
	return data, nil
}

// tfrStream streams a TFRecord file of tf.train.Example records.
type tfrStream struct {
	rr      *recordReader
	c       io.Closer
	dec     exampleDecoder
	labels  bool
	classes int
	dim     int
	row     int
	peeked  bool // the first record is decoded in dec and not yet delivered
	err     error
}

// openTFRecord opens a TFRecord file and decodes its first record to learn
// the dimension.
func openTFRecord(path string, o Options) (Stream, error) {
	f, size, err := openSized(path)
	if err != nil {
		return nil, err
	}
	s, err := newTFRStream(path, f, size, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.c = f
	return s, nil
}

func newTFRStream(name string, r io.Reader, size int64, o Options) (*tfrStream, error) {
	s := &tfrStream{
		rr:      newRecordReader(name, r, size),
		labels:  !o.Unlabeled,
		classes: o.Classes,
		dim:     -1,
	}
	s.dec.feature, s.dec.label = o.Features, o.Labels
	if s.dec.feature == "" {
		s.dec.feature = "repr"
	}
	if s.dec.label == "" {
		s.dec.label = "label"
	}
	if err := s.decode(); err != nil {
		if err == io.EOF {
			return nil, wrapf(linalg.ErrEmpty, "%s: no records", name)
		}
		return nil, err
	}
	s.peeked = true
	return s, nil
}

// decode reads and decodes the next record into s.dec.
func (s *tfrStream) decode() error {
	rec, err := s.rr.next()
	if err != nil {
		return err
	}
	if err := s.dec.decode(rec, s.labels); err != nil {
		return within(fmt.Sprintf("%s: record %d", s.rr.name, s.row), err)
	}
	if s.dim < 0 {
		if len(s.dec.x) == 0 {
			return wrapf(linalg.ErrEmpty, "%s: record 0: feature %q is empty", s.rr.name, s.dec.feature)
		}
		s.dim = len(s.dec.x)
	}
	if len(s.dec.x) != s.dim {
		return wrapf(linalg.ErrShape, "%s: record %d: %d features, earlier records have %d", s.rr.name, s.row, len(s.dec.x), s.dim)
	}
	for j, v := range s.dec.x {
		if f := float64(v); !(math.Abs(f) <= linalg.MaxAbs) {
			return wrapf(linalg.ErrNonFinite, "%s: record %d: feature %d = %v", s.rr.name, s.row, j, v)
		}
	}
	if s.labels {
		if err := checkLabel(s.rr.name, s.row, s.dec.y, s.dec.yOK, s.classes); err != nil {
			return err
		}
	}
	return nil
}

func (s *tfrStream) Dim() int { return s.dim }

func (s *tfrStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	if err := checkMaxRows(maxRows); err != nil {
		return nil, nil, err
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	x := &linalg.Matrix32{Cols: s.dim}
	var y []int
	for x.Rows < maxRows {
		if !s.peeked {
			if err := s.decode(); err != nil {
				s.err = err
				break
			}
		}
		s.peeked = false
		x.Data = append(x.Data, s.dec.x...)
		if s.labels {
			y = append(y, int(s.dec.y))
		}
		x.Rows++
		s.row++
	}
	if x.Rows == 0 || (s.err != nil && s.err != io.EOF) {
		return nil, nil, s.err
	}
	return x, y, nil
}

func (s *tfrStream) Close() error {
	if s.err == nil {
		s.err = errClosed
	}
	if s.c == nil {
		return nil
	}
	err := s.c.Close()
	s.c = nil
	if err != nil {
		return fmt.Errorf("features: %w", err)
	}
	return nil
}

// A TFRecordWriter writes tf.train.Example records in TFRecord framing, in
// the layout the dp_transfer code of Mehta et al. reads: a float_list
// feature of the features and an int64_list feature of the label.
//
// A TFRecordWriter is not safe for concurrent use.
type TFRecordWriter struct {
	// Features and Labels name the two features; empty means "repr" and
	// "label".
	Features, Labels string

	w   io.Writer
	buf []byte
}

// NewTFRecordWriter returns a writer of records to w. It does not buffer:
// give it a bufio.Writer for speed.
func NewTFRecordWriter(w io.Writer) *TFRecordWriter {
	return &TFRecordWriter{w: w}
}

// Write writes one example: features x and, if label ≥ 0, the label (a
// negative label writes an unlabelled example). It returns an error
// wrapping linalg.ErrNonFinite for a NaN, ±Inf or huge feature, and
// linalg.ErrLabel for a label above MaxLabel.
func (w *TFRecordWriter) Write(x []float32, label int) error {
	for j, v := range x {
		if f := float64(v); !(math.Abs(f) <= linalg.MaxAbs) {
			return wrapf(linalg.ErrNonFinite, "write: feature %d = %v", j, v)
		}
	}
	if label > MaxLabel {
		return wrapf(linalg.ErrLabel, "write: label %d, want [0, %d]", label, MaxLabel)
	}
	fn, ln := w.Features, w.Labels
	if fn == "" {
		fn = "repr"
	}
	if ln == "" {
		ln = "label"
	}
	w.buf = appendExample(w.buf[:0], fn, x, ln, label)
	return w.WriteRecord(w.buf)
}

// WriteRecord writes data as one TFRecord record, whatever it holds.
func (w *TFRecordWriter) WriteRecord(data []byte) error {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var tail [4]byte
	binary.LittleEndian.PutUint32(tail[:], maskedCRC(data))
	for _, b := range [][]byte{hdr[:], data, tail[:]} {
		if _, err := w.w.Write(b); err != nil {
			return fmt.Errorf("features: write record: %w", err)
		}
	}
	return nil
}

// WriteTFRecord writes the rows of x with their labels as tf.train.Example
// records with features "repr" (float_list) and "label" (int64_list; left
// out if labels is nil) to path. The file is written to a temporary file and
// renamed, so path never holds a partial file. Errors are as for WriteNPZ.
func WriteTFRecord(path string, x *linalg.Matrix32, labels []int) error {
	if err := checkWrite(x, labels); err != nil {
		return err
	}
	return atomicfile.Write(path, 0o644, func(f io.Writer) error {
		bw := bufio.NewWriterSize(f, 1<<16)
		w := NewTFRecordWriter(bw)
		for i := range x.Rows {
			l := -1
			if labels != nil {
				l = labels[i]
			}
			if err := w.Write(x.Row(i), l); err != nil {
				return err
			}
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("features: write %s: %w", path, err)
		}
		return nil
	})
}
