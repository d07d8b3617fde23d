package features

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpopt/dpopt/linalg"
)

// A Stream delivers the rows of a feature file in blocks, so that sufficient
// statistics or full-batch gradients can be computed over files larger than
// memory: it holds one block (and a read buffer) at a time.
//
// A Stream is not safe for concurrent use.
type Stream interface {
	// Next returns the next block of at most maxRows rows (at least one)
	// with their labels; labels is nil for an unlabelled stream. The block
	// and the labels are newly allocated and belong to the caller. At the
	// end of the data Next returns io.EOF; any other error is final too.
	// maxRows < 1 is a *accountant.ParamError.
	Next(maxRows int) (*linalg.Matrix32, []int, error)
	// Dim is the number of features per row, known from Open on.
	Dim() int
	// Close releases the files. It may be called at any time, more than once.
	Close() error
}

// A Lener is a Stream that knows its number of rows before reading them, as
// .npy and .npz streams do from their headers (checked against the sizes on
// disk). TFRecord and CSV streams do not implement it.
type Lener interface {
	Len() int
}

// Format is a feature file format.
type Format int

// The formats Open and Load read. FormatAuto chooses from the file name:
// ".npy", ".npz", ".csv" or ".csv.gz", and a name containing ".tfr"
// (".tfrecord", ".tfrecords", "train.tfr-00000-of-00008") for TFRecord.
const (
	FormatAuto Format = iota
	FormatNPY
	FormatNPZ
	FormatTFRecord
	FormatCSV
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatNPY:
		return "npy"
	case FormatNPZ:
		return "npz"
	case FormatTFRecord:
		return "tfrecord"
	case FormatCSV:
		return "csv"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Options say how to read a feature file. The zero value reads the
// conventional layouts: .npz arrays "features" (or "x") and "labels" (or
// "y"); TFRecord features "repr" and "label"; CSV without a header, label in
// the first column.
type Options struct {
	// Format of the file; FormatAuto (the default) decides by its name.
	Format Format
	// Features names the features: the .npz array (default "features", then
	// "x") or the TFRecord float_list feature (default "repr").
	Features string
	// Labels names the labels: the .npz array (default "labels", then "y")
	// or the TFRecord int64_list feature (default "label").
	Labels string
	// LabelFile is, for a .npy file of features, a .npy file holding their
	// labels (shape (rows,) or (rows, 1)). Without it a .npy stream is
	// unlabelled.
	LabelFile string
	// Unlabeled reads the features only; labels are then nil.
	Unlabeled bool
	// Classes, if positive, is the number of classes K: a label outside
	// [0, K) is an error wrapping linalg.ErrLabel.
	Classes int
	// CSV holds the options of CSV files.
	CSV CSVOptions
}

// CSVOptions say how to read a CSV file: numbers in every column, one of
// which (unless Options.Unlabeled) holds the integer labels.
type CSVOptions struct {
	// Header says the first line names the columns.
	Header bool
	// LabelColumn is the index of the label column: 0 (the default) is the
	// first, negative values count from the end (-1 is the last).
	LabelColumn int
	// LabelName, if set, selects the label column by its header name
	// (and implies Header).
	LabelName string
	// Comma is the field separator; zero means ','.
	Comma rune
}

// Open opens a feature file for streaming. path may be a glob pattern
// ("train.tfr*"): the matching files, in lexical order, are read one after
// the other as one stream, and must all have the same dimension. Errors for
// bad files wrap ErrFormat, ErrChecksum, ErrTruncated or the linalg
// sentinels (see ErrFormat); a missing file wraps fs.ErrNotExist.
func Open(path string, o Options) (Stream, error) {
	if o.Classes < 0 {
		return nil, paramError("Classes", float64(o.Classes), "must not be negative")
	}
	files := []string{path}
	if strings.ContainsAny(path, "*?[") {
		m, err := filepath.Glob(path)
		if err != nil {
			return nil, fmt.Errorf("features: pattern %q: %w", path, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("features: no file matches %q: %w", path, fs.ErrNotExist)
		}
		files = m
	}
	format := o.Format
	if format == FormatAuto {
		var err error
		if format, err = formatOf(files[0]); err != nil {
			return nil, err
		}
	}
	open := func(f string) (Stream, error) { return openFile(f, format, o) }
	if len(files) == 1 {
		return open(files[0])
	}
	first, err := open(files[0])
	if err != nil {
		return nil, err
	}
	return &concatStream{files: files[1:], cur: first, dim: first.Dim(), open: open}, nil
}

// formatOf chooses a format by file name.
func formatOf(path string) (Format, error) {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(base, ".npy"):
		return FormatNPY, nil
	case strings.HasSuffix(base, ".npz"):
		return FormatNPZ, nil
	case strings.HasSuffix(base, ".csv"), strings.HasSuffix(base, ".csv.gz"):
		return FormatCSV, nil
	case strings.Contains(base, ".tfr"):
		return FormatTFRecord, nil
	}
	return FormatAuto, wrapf(ErrFormat, "%s: unknown file type; set Options.Format", path)
}

func openFile(path string, format Format, o Options) (Stream, error) {
	switch format {
	case FormatNPY:
		return openNPY(path, o)
	case FormatNPZ:
		return openNPZ(path, o)
	case FormatTFRecord:
		return openTFRecord(path, o)
	case FormatCSV:
		return openCSV(path, o)
	}
	return nil, paramError("Format", float64(format), "is not a known format")
}

// Load reads a whole feature file (or the files a glob matches, see Open)
// into memory. labels is nil for unlabelled data. It returns an error
// wrapping linalg.ErrEmpty for a file without rows.
//
// Memory is allocated as data arrives, or up front when the headers give
// the size and it was checked against the size on disk; a header never makes
// Load allocate more than the file holds.
func Load(path string, o Options) (*linalg.Matrix32, []int, error) {
	s, err := Open(path, o)
	if err != nil {
		return nil, nil, err
	}
	defer s.Close()
	x, y, err := ReadAll(s)
	if err != nil {
		return nil, nil, err
	}
	return x, y, s.Close()
}

// ReadAll reads the rest of s into memory; see Load. It does not close s.
func ReadAll(s Stream) (*linalg.Matrix32, []int, error) {
	d := s.Dim()
	x := &linalg.Matrix32{Cols: d}
	var y []int
	if h, ok := s.(sizeHinter); ok {
		if n := h.sizeHint(); n > 0 {
			x.Data = linalg.MakeFloat32(n * d)[:0]
			y = make([]int, 0, n)
		}
	}
	// Blocks of about 4 MiB.
	block := max(1, min(1<<16, (1<<20)/max(d, 1)))
	labelled := true
	for {
		b, l, err := s.Next(block)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		x.Data = append(x.Data, b.Data...)
		x.Rows += b.Rows
		if l == nil {
			labelled = false
		}
		y = append(y, l...)
	}
	if x.Rows == 0 {
		return nil, nil, fmt.Errorf("features: no rows: %w", linalg.ErrEmpty)
	}
	if !labelled {
		y = nil
	}
	return x, y, nil
}

// sizeHint is implemented by streams whose row count is known and justified
// by the bytes on disk, so that ReadAll may allocate it up front.
type sizeHinter interface {
	sizeHint() int
}

// checkMaxRows validates the argument of Next.
func checkMaxRows(maxRows int) error {
	if maxRows < 1 {
		return paramError("maxRows", float64(maxRows), "must be at least 1")
	}
	return nil
}

// concatStream reads several files as one stream, opening one at a time.
type concatStream struct {
	files []string // still to open
	cur   Stream
	dim   int
	open  func(string) (Stream, error)
	err   error
}

func (c *concatStream) Dim() int { return c.dim }

func (c *concatStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	if err := checkMaxRows(maxRows); err != nil {
		return nil, nil, err
	}
	for c.err == nil {
		if c.cur == nil {
			if len(c.files) == 0 {
				c.err = io.EOF
				break
			}
			f := c.files[0]
			c.files = c.files[1:]
			s, err := c.open(f)
			if err != nil {
				c.err = err
				break
			}
			c.cur = s
			if s.Dim() != c.dim {
				c.err = wrapf(linalg.ErrShape, "%s: %d features, earlier files have %d", f, s.Dim(), c.dim)
				break
			}
		}
		x, y, err := c.cur.Next(maxRows)
		if err == nil {
			return x, y, nil
		}
		if !errors.Is(err, io.EOF) {
			c.err = err
			break
		}
		if err := c.cur.Close(); err != nil {
			c.err = err
			break
		}
		c.cur = nil
	}
	return nil, nil, c.err
}

func (c *concatStream) Close() error {
	if c.cur == nil {
		return nil
	}
	err := c.cur.Close()
	c.cur = nil
	c.files = nil
	if c.err == nil {
		c.err = errClosed
	}
	return err
}

// errClosed is returned by Next after Close.
var errClosed = errors.New("features: stream closed")

// openSized opens a file and returns it with its size.
func openSized(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("features: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("features: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, wrapf(ErrFormat, "%s is not a regular file", path)
	}
	return f, st.Size(), nil
}
