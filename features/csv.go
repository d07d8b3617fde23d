package features

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/dpopt/dpopt/linalg"
)

// csvStream streams a CSV file of numbers.
type csvStream struct {
	name    string
	r       *csv.Reader
	closers []io.Closer
	label   int // label column, or -1 when unlabelled
	dim     int
	classes int
	row     int      // data rows delivered
	pending []string // first data record, read by Open
	err     error
}

// openCSV opens a CSV (or gzip-compressed CSV) file.
func openCSV(path string, o Options) (Stream, error) {
	f, _, err := openSized(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader = f
	closers := []io.Closer{f}
	if strings.HasSuffix(strings.ToLower(path), ".gz") {
		z, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			f.Close()
			return nil, readErr(path, err)
		}
		r, closers = z, append(closers, z)
	}
	s, err := newCSVStream(path, r, o)
	if err != nil {
		for _, c := range closers {
			c.Close()
		}
		return nil, err
	}
	s.closers = closers
	return s, nil
}

func newCSVStream(name string, r io.Reader, o Options) (*csvStream, error) {
	c := o.CSV
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	if c.Comma != 0 {
		cr.Comma = c.Comma
		if c.Comma == '#' {
			cr.Comment = 0
		}
	}
	s := &csvStream{name: name, r: cr, classes: o.Classes}
	first, err := cr.Read()
	if err == io.EOF {
		return nil, wrapf(linalg.ErrEmpty, "%s: empty CSV file", name)
	}
	if err != nil {
		return nil, s.csvErr(err)
	}
	cols := len(first)
	header := c.Header || c.LabelName != ""
	s.label = -1
	if !o.Unlabeled {
		switch {
		case c.LabelName != "":
			for j, h := range first {
				if strings.TrimSpace(h) == c.LabelName {
					if s.label >= 0 {
						return nil, wrapf(ErrFormat, "%s: two columns named %q", name, c.LabelName)
					}
					s.label = j
				}
			}
			if s.label < 0 {
				return nil, wrapf(ErrFormat, "%s: no column named %q in the header", name, c.LabelName)
			}
		case c.LabelColumn >= 0 && c.LabelColumn < cols:
			s.label = c.LabelColumn
		case c.LabelColumn < 0 && -c.LabelColumn <= cols:
			s.label = cols + c.LabelColumn
		default:
			return nil, wrapf(linalg.ErrShape, "%s: label column %d of %d columns", name, c.LabelColumn, cols)
		}
	}
	s.dim = cols
	if s.label >= 0 {
		s.dim--
	}
	if s.dim < 1 {
		return nil, wrapf(linalg.ErrEmpty, "%s: no feature columns", name)
	}
	cr.FieldsPerRecord = cols
	if !header {
		s.pending = append([]string(nil), first...)
	}
	return s, nil
}

// csvErr converts an error of encoding/csv.
func (s *csvStream) csvErr(err error) error {
	if errors.Is(err, csv.ErrFieldCount) {
		return fmt.Errorf("features: %s: %w: %w", s.name, linalg.ErrShape, err)
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("features: %s: %w: %w", s.name, ErrFormat, err)
	}
	return readErr(s.name, err)
}

func (s *csvStream) Dim() int { return s.dim }

func (s *csvStream) Next(maxRows int) (*linalg.Matrix32, []int, error) {
	if err := checkMaxRows(maxRows); err != nil {
		return nil, nil, err
	}
	if s.err != nil {
		return nil, nil, s.err
	}
	x := &linalg.Matrix32{Cols: s.dim}
	var y []int
	for x.Rows < maxRows {
		rec := s.pending
		s.pending = nil
		if rec == nil {
			var err error
			if rec, err = s.r.Read(); err != nil {
				if err == io.EOF {
					s.err = io.EOF
				} else {
					s.err = s.csvErr(err)
				}
				break
			}
		}
		line, _ := s.r.FieldPos(0)
		for j, f := range rec {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if j == s.label {
				ok := err == nil && v >= 0 && v <= MaxLabel && v == math.Trunc(v)
				if !ok {
					s.err = wrapf(linalg.ErrLabel, "%s: line %d: label %q is not an integer in [0, %d]", s.name, line, f, MaxLabel)
					break
				}
				if s.err = checkLabel(s.name, s.row, v, true, s.classes); s.err != nil {
					break
				}
				y = append(y, int(v))
				continue
			}
			if err != nil {
				s.err = wrapf(ErrFormat, "%s: line %d column %d: %q is not a number", s.name, line, j, f)
				break
			}
			if !(math.Abs(v) <= linalg.MaxAbs) {
				s.err = wrapf(linalg.ErrNonFinite, "%s: line %d column %d = %v", s.name, line, j, v)
				break
			}
			x.Data = append(x.Data, float32(v))
		}
		if s.err != nil {
			break
		}
		x.Rows++
		s.row++
	}
	if x.Rows == 0 || (s.err != nil && s.err != io.EOF) {
		return nil, nil, s.err
	}
	return x, y, nil
}

func (s *csvStream) Close() error {
	var first error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i].Close(); err != nil && first == nil {
			first = fmt.Errorf("features: %w", err)
		}
	}
	s.closers = nil
	if s.err == nil {
		s.err = errClosed
	}
	return first
}
