package features

import (
	"archive/zip"
	"bufio"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/dpopt/dpopt/linalg"
)

// The .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
// the magic "\x93NUMPY", a major and a minor version byte, the header length
// (2 bytes little-endian in version 1, 4 bytes in versions 2 and 3), then the
// header — a Python dict literal such as
// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" padded with
// spaces and ended by '\n' — then the raw array data.
//
// The header is parsed here rather than by npyio: npyio's reader allocates
// the header from its claimed length (up to 4 GiB), slices it by indices it
// has not checked (a malformed dict panics), and allocates arrays from the
// claimed shape. Here the header length is capped, the dict is parsed
// strictly, and the shape × item size must equal the bytes actually present
// before anything is allocated.

// maxNPYHeader bounds the header length accepted. NumPy itself refuses
// headers over 10 000 bytes by default; a header of real-world shape is
// under 200.
const maxNPYHeader = 1 << 16

// npyMagic starts every .npy stream.
const npyMagic = "\x93NUMPY"

// npyHeader is a parsed .npy header.
type npyHeader struct {
	kind    byte // 'f' float, 'i' signed, 'u' unsigned integer, 'b' bool
	size    int  // bytes per element
	order   binary.ByteOrder
	fortran bool
	shape   []int
	offset  int64 // bytes before the data
	elems   int64 // product of shape
}

// dtype returns the header's dtype as NumPy spells it, for messages.
func (h *npyHeader) dtype() string {
	o := "<"
	if h.order == binary.BigEndian {
		o = ">"
	}
	return fmt.Sprintf("%s%c%d", o, h.kind, h.size)
}

// readNPYHeader reads a .npy header from r, whose stream holds size bytes in
// all (header and data), and checks that the data announced by the header
// is exactly what remains. It reads at most min(size, maxNPYHeader+12)
// bytes and allocates no more.
func readNPYHeader(r io.Reader, size int64) (*npyHeader, error) {
	var pre [12]byte
	if size < 10 {
		return nil, wrapf(ErrTruncated, "npy: %d bytes, shorter than a header", size)
	}
	if _, err := io.ReadFull(r, pre[:8]); err != nil {
		return nil, readErr("npy header", err)
	}
	if string(pre[:6]) != npyMagic {
		return nil, wrapf(ErrFormat, "npy: missing magic string \\x93NUMPY")
	}
	major := pre[6]
	var hlen, prefix int64
	switch major {
	case 1:
		if _, err := io.ReadFull(r, pre[8:10]); err != nil {
			return nil, readErr("npy header", err)
		}
		hlen, prefix = int64(binary.LittleEndian.Uint16(pre[8:10])), 10
	case 2, 3:
		if _, err := io.ReadFull(r, pre[8:12]); err != nil {
			return nil, readErr("npy header", err)
		}
		hlen, prefix = int64(binary.LittleEndian.Uint32(pre[8:12])), 12
	default:
		return nil, wrapf(ErrFormat, "npy: unsupported format version %d.%d", major, pre[7])
	}
	if hlen > size-prefix {
		return nil, wrapf(ErrTruncated, "npy: header claims %d bytes, %d remain", hlen, size-prefix)
	}
	if hlen > maxNPYHeader {
		return nil, wrapf(ErrFormat, "npy: header of %d bytes, more than %d", hlen, maxNPYHeader)
	}
	buf := make([]byte, hlen)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, readErr("npy header", err)
	}
	h, err := parseNPYDict(string(buf))
	if err != nil {
		return nil, err
	}
	h.offset = prefix + hlen
	n := uint64(1)
	for _, d := range h.shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64/8 {
			return nil, wrapf(ErrFormat, "npy: shape %v overflows", h.shape)
		}
		n = lo
	}
	h.elems = int64(n)
	data, have := h.elems*int64(h.size), size-h.offset
	switch {
	case data > have:
		return nil, wrapf(ErrTruncated, "npy: shape %v of %s needs %d data bytes, %d remain", h.shape, h.dtype(), data, have)
	case data < have:
		return nil, wrapf(ErrFormat, "npy: shape %v of %s needs %d data bytes, %d remain (trailing bytes)", h.shape, h.dtype(), data, have)
	}
	return h, nil
}

// readErr converts an error met while reading into a features error: a
// short read is ErrTruncated, a zip CRC mismatch ErrChecksum, corrupt zip or
// deflate data ErrFormat; other (I/O) errors are wrapped as they are.
func readErr(what string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return wrapf(ErrTruncated, "%s ends early", what)
	case errors.Is(err, zip.ErrChecksum):
		return fmt.Errorf("features: %s: %w: %w", what, ErrChecksum, err)
	case errors.Is(err, zip.ErrFormat), errors.As(err, &corrupt):
		return fmt.Errorf("features: %s: %w: %w", what, ErrFormat, err)
	}
	return fmt.Errorf("features: %s: %w", what, err)
}

// parseNPYDict parses the header dict: exactly the keys descr, fortran_order
// and shape, in any order, with an optional trailing comma, then spaces and
// a final newline.
func parseNPYDict(s string) (*npyHeader, error) {
	p := &pyParser{s: s}
	bad := func(what string) error {
		return wrapf(ErrFormat, "npy: header dict: %s at byte %d of %q", what, p.i, truncate(s, 80))
	}
	h := &npyHeader{}
	var seen [3]bool
	if !p.eat('{') {
		return nil, bad("want '{'")
	}
	for {
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return nil, bad("want a quoted key")
		}
		if !p.eat(':') {
			return nil, bad("want ':'")
		}
		switch key {
		case "descr":
			v, ok := p.str()
			if !ok {
				return nil, wrapf(ErrFormat, "npy: descr is not a simple dtype string (structured arrays are not supported)")
			}
			if err := h.setDescr(v); err != nil {
				return nil, err
			}
			seen[0] = true
		case "fortran_order":
			switch p.ident() {
			case "True":
				h.fortran = true
			case "False":
				h.fortran = false
			default:
				return nil, bad("fortran_order is not True or False")
			}
			seen[1] = true
		case "shape":
			shape, ok := p.tuple()
			if !ok {
				return nil, bad("shape is not a tuple of non-negative integers")
			}
			h.shape = shape
			seen[2] = true
		default:
			return nil, bad(fmt.Sprintf("unknown key %q", key))
		}
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return nil, bad("want ',' or '}'")
		}
		break
	}
	if !seen[0] || !seen[1] || !seen[2] {
		return nil, bad("missing descr, fortran_order or shape")
	}
	if strings.TrimRight(s[p.i:], " \t\r\n\x00") != "" {
		return nil, bad("text after the dict")
	}
	return h, nil
}

// setDescr parses a dtype string such as "<f4", "|u1" or ">i8".
func (h *npyHeader) setDescr(d string) error {
	if len(d) < 2 {
		return wrapf(ErrFormat, "npy: unsupported dtype %q", d)
	}
	var order byte
	switch d[0] {
	case '<', '>', '|', '=':
		order, d = d[0], d[1:]
	}
	kind := d[0]
	size, err := strconv.Atoi(d[1:])
	ok := err == nil
	switch kind {
	case 'f':
		ok = ok && (size == 4 || size == 8)
	case 'i', 'u':
		ok = ok && (size == 1 || size == 2 || size == 4 || size == 8)
	case 'b':
		ok = ok && size == 1
	default:
		ok = false
	}
	if !ok {
		return wrapf(ErrFormat, "npy: unsupported dtype %q (want float32/64 or an integer type)", string(order)+d)
	}
	h.kind, h.size = kind, size
	switch order {
	case '>':
		h.order = binary.BigEndian
	case '=':
		h.order = binary.NativeEndian
	default: // '<'; '|' or none: one-byte types, where order does not matter
		h.order = binary.LittleEndian
	}
	return nil
}

// pyParser scans the small subset of Python literals found in .npy headers.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

// eat skips spaces and then c, reporting whether c was there.
func (p *pyParser) eat(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted string without escapes.
func (p *pyParser) str() (string, bool) {
	p.space()
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", false
	}
	p.i += end + 2
	return v, true
}

// ident reads a run of letters.
func (p *pyParser) ident() string {
	p.space()
	j := p.i
	for j < len(p.s) && ('a' <= p.s[j] && p.s[j] <= 'z' || 'A' <= p.s[j] && p.s[j] <= 'Z') {
		j++
	}
	v := p.s[p.i:j]
	p.i = j
	return v
}

// tuple reads a tuple of non-negative integers, allowing Python 2's "L" suffix.
func (p *pyParser) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	shape := []int{}
	for {
		if p.eat(')') {
			return shape, true
		}
		p.space()
		j := p.i
		for j < len(p.s) && '0' <= p.s[j] && p.s[j] <= '9' {
			j++
		}
		if j == p.i || j-p.i > 19 || len(shape) >= 32 {
			return nil, false
		}
		v, err := strconv.ParseInt(p.s[p.i:j], 10, 64)
		if err != nil {
			return nil, false
		}
		p.i = j
		if p.i < len(p.s) && p.s[p.i] == 'L' {
			p.i++
		}
		shape = append(shape, int(v))
		if p.eat(',') {
			continue
		}
		if !p.eat(')') {
			return nil, false
		}
		return shape, true
	}
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// npyArray reads the data of one .npy array in row blocks.
type npyArray struct {
	name string // for messages: file or entry name
	h    *npyHeader
	r    *bufio.Reader
	rows int // shape[0]
	cols int // product of shape[1:]
	done int // rows delivered
	buf  []byte
}

// newFeatureArray reads the header of a features array: float32 or float64,
// at least two dimensions (rows, then the trailing dimensions flattened),
// C order.
func newFeatureArray(name string, r io.Reader, size int64) (*npyArray, error) {
	a, err := newNPYArray(name, r, size)
	if err != nil {
		return nil, err
	}
	h := a.h
	if h.kind != 'f' {
		return nil, wrapf(ErrFormat, "%s: features of dtype %s, want float32 or float64", name, h.dtype())
	}
	if len(h.shape) < 2 {
		return nil, wrapf(linalg.ErrShape, "%s: features of shape %v, want (rows, dim, …)", name, h.shape)
	}
	if h.fortran && a.rows > 1 && a.cols > 1 {
		return nil, wrapf(ErrFormat, "%s: Fortran-ordered features; save them with numpy.ascontiguousarray", name)
	}
	if a.cols == 0 {
		return nil, wrapf(linalg.ErrEmpty, "%s: features of shape %v have no columns", name, h.shape)
	}
	return a, nil
}

// newLabelArray reads the header of a labels array: an integer or float
// dtype, shape (rows,) or (rows, 1).
func newLabelArray(name string, r io.Reader, size int64) (*npyArray, error) {
	a, err := newNPYArray(name, r, size)
	if err != nil {
		return nil, err
	}
	h := a.h
	if h.kind == 'b' {
		return nil, wrapf(ErrFormat, "%s: labels of dtype bool, want integers", name)
	}
	if len(h.shape) == 0 || len(h.shape) > 2 || (len(h.shape) == 2 && h.shape[1] != 1) {
		return nil, wrapf(linalg.ErrShape, "%s: labels of shape %v, want (rows,) or (rows, 1)", name, h.shape)
	}
	return a, nil
}

func newNPYArray(name string, r io.Reader, size int64) (*npyArray, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	h, err := readNPYHeader(br, size)
	if err != nil {
		return nil, within(name, err)
	}
	a := &npyArray{name: name, h: h, r: br}
	if len(h.shape) > 0 {
		a.rows, a.cols = h.shape[0], 1
		for _, d := range h.shape[1:] {
			if d != 0 && a.cols > math.MaxInt32/d {
				return nil, wrapf(ErrFormat, "%s: shape %v: rows of more than 2³¹ values", name, h.shape)
			}
			a.cols *= d
		}
	}
	return a, nil
}

// fill reads the next n rows' raw bytes into a.buf. The buffer grows with
// the bytes that actually arrive, not with what the headers claim: a
// compressed .npz entry cannot be checked against the file size beforehand.
func (a *npyArray) fill(n int) ([]byte, error) {
	need := n * a.cols * a.h.size // at most the data size checked against the stream size
	b := a.buf[:0]
	for len(b) < need {
		chunk := min(need-len(b), 1<<20)
		b = slices.Grow(b, chunk)
		m, err := io.ReadFull(a.r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		if err != nil {
			a.buf = b
			return nil, readErr(a.name, err)
		}
	}
	a.buf = b
	return b, nil
}

// readFeatures reads the next n rows (n·cols values), rejecting non-finite
// or huge values.
func (a *npyArray) readFeatures(n int) ([]float32, error) {
	b, err := a.fill(n)
	if err != nil {
		return nil, err
	}
	dst := linalg.MakeFloat32(n * a.cols)
	o := a.h.order
	bad := func(k int, v float64) error {
		r := a.done + k/a.cols
		return wrapf(linalg.ErrNonFinite, "%s: row %d column %d = %v", a.name, r, k%a.cols, v)
	}
	switch a.h.size {
	case 4:
		for k := range dst {
			v := math.Float32frombits(o.Uint32(b[4*k:]))
			if f := float64(v); !(math.Abs(f) <= linalg.MaxAbs) {
				return nil, bad(k, f)
			}
			dst[k] = v
		}
	case 8:
		for k := range dst {
			f := math.Float64frombits(o.Uint64(b[8*k:]))
			if !(math.Abs(f) <= linalg.MaxAbs) {
				return nil, bad(k, f)
			}
			dst[k] = float32(f)
		}
	default:
		panic("features: internal: feature dtype not checked")
	}
	a.done += n
	return dst, nil
}

// readLabels reads the next n labels.
func (a *npyArray) readLabels(n int, classes int) ([]int, error) {
	b, err := a.fill(n)
	if err != nil {
		return nil, err
	}
	dst := make([]int, n)
	o, size := a.h.order, a.h.size
	for k := range dst {
		p := b[size*k:]
		var v float64 // every integer label that passes the checks below is exact in float64
		var ok bool
		switch a.h.kind {
		case 'i':
			var x int64
			switch size {
			case 1:
				x = int64(int8(p[0]))
			case 2:
				x = int64(int16(o.Uint16(p)))
			case 4:
				x = int64(int32(o.Uint32(p)))
			case 8:
				x = int64(o.Uint64(p))
			}
			v, ok = float64(x), x >= 0 && x <= MaxLabel
		case 'u':
			var x uint64
			switch size {
			case 1:
				x = uint64(p[0])
			case 2:
				x = uint64(o.Uint16(p))
			case 4:
				x = uint64(o.Uint32(p))
			case 8:
				x = o.Uint64(p)
			}
			v, ok = float64(x), x <= MaxLabel
		case 'f':
			if size == 4 {
				v = float64(math.Float32frombits(o.Uint32(p)))
			} else {
				v = math.Float64frombits(o.Uint64(p))
			}
			ok = v >= 0 && v <= MaxLabel && v == math.Trunc(v)
		}
		if err := checkLabel(a.name, a.done+k, v, ok, classes); err != nil {
			return nil, err
		}
		dst[k] = int(v)
	}
	a.done += n
	return dst, nil
}

// checkLabel reports a label that is not an integer in [0, MaxLabel], or
// not below classes when classes > 0.
func checkLabel(name string, row int, v float64, ok bool, classes int) error {
	if !ok {
		return wrapf(linalg.ErrLabel, "%s: label %v of row %d is not an integer in [0, %d]", name, v, row, MaxLabel)
	}
	if classes > 0 && v >= float64(classes) {
		return wrapf(linalg.ErrLabel, "%s: label %v of row %d, want [0, %d)", name, v, row, classes)
	}
	return nil
}

// finish checks that the array's stream ends where the data ends. For a zip
// entry, reaching its end is what makes archive/zip verify the entry's CRC.
func (a *npyArray) finish() error {
	var b [1]byte
	n, err := io.ReadFull(a.r, b[:])
	switch {
	case n > 0:
		return wrapf(ErrFormat, "%s: trailing bytes after the data", a.name)
	case err == io.EOF:
		return nil
	default:
		return readErr(a.name, err)
	}
}
