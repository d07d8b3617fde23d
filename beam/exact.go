package dpbeam

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// fixed is a vector of exact fixed-point sums: entry i is the integer
// v[i·words : (i+1)·words] (two's complement, little-endian words) times
// 2^lsb. Adding float64 values to it is exact whenever they are multiples of
// 2^lsb and the running sums fit in words·64−1 bits, so its value does not
// depend on the order or grouping of the additions. Values that are not
// multiples of 2^lsb are first rounded to the nearest multiple (ties to even),
// which is a function of the value alone and keeps that independence.
type fixed struct {
	lsb   int // exponent of the least significant bit
	words int
	v     []uint64
}

// fixedLayout returns the least significant bit and the number of words an
// exact sum of up to 2⁶² values of magnitude at most bound needs, when every
// value is a multiple of 2^lsb.
func fixedLayout(lsb int, bound float64) (int, int) {
	_, e := math.Frexp(bound)             // bound < 2^e
	top := e + 62                         // |sum| < 2^top
	return lsb, (top - lsb + 1 + 63) / 64 // +1: the sign bit
}

func newFixed(n, lsb, words int) *fixed {
	return &fixed{lsb: lsb, words: words, v: make([]uint64, n*words)}
}

// len returns the number of entries.
func (f *fixed) len() int { return len(f.v) / f.words }

// add adds x to entry i. It returns an error if x is not finite or the sum
// would overflow the accumulator (impossible for values within the bound the
// layout was made for).
func (f *fixed) add(i int, x float64) error {
	if x == 0 {
		return nil
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return fmt.Errorf("dpbeam: non-finite value %g in a sum", x)
	}
	neg := x < 0
	frac, e := math.Frexp(math.Abs(x)) // |x| = frac·2^e, frac in [0.5, 1)
	m := uint64(math.Ldexp(frac, 53))  // |x| = m·2^(e−53), m < 2^53
	e -= 53
	if e < f.lsb { // round m·2^e to a multiple of 2^lsb, ties to even
		s := f.lsb - e
		if s > 54 {
			return nil // below half of 2^lsb: rounds to zero
		}
		q, r := m>>s, m&(1<<s-1)
		half := uint64(1) << (s - 1)
		if r > half || (r == half && q&1 == 1) {
			q++
		}
		m, e = q, f.lsb
		if m == 0 {
			return nil
		}
	}
	shift := e - f.lsb
	w0, b := shift/64, uint(shift%64)
	lo, hi := m<<b, uint64(0)
	if b > 0 {
		hi = m >> (64 - b)
	}
	if w0 >= f.words || (hi != 0 && w0+1 >= f.words) {
		return errOverflow
	}
	acc := f.v[i*f.words : (i+1)*f.words]
	var c uint64
	if neg {
		acc[w0], c = bits.Sub64(acc[w0], lo, 0)
		for k := w0 + 1; k < f.words; k++ {
			sub := uint64(0)
			if k == w0+1 {
				sub = hi
			}
			if sub == 0 && c == 0 {
				break
			}
			acc[k], c = bits.Sub64(acc[k], sub, c)
		}
	} else {
		acc[w0], c = bits.Add64(acc[w0], lo, 0)
		for k := w0 + 1; k < f.words; k++ {
			add := uint64(0)
			if k == w0+1 {
				add = hi
			}
			if add == 0 && c == 0 {
				break
			}
			acc[k], c = bits.Add64(acc[k], add, c)
		}
	}
	return f.checkTop(acc)
}

// errOverflow reports a sum outside an accumulator's range: a dpbeam bug or
// data outside the documented bounds.
var errOverflow = fmt.Errorf("dpbeam: exact sum overflows its accumulator")

// checkTop rejects sums within a factor 2 of the accumulator's capacity, so
// that two's complement wrap-around can never go unnoticed.
func (f *fixed) checkTop(acc []uint64) error {
	top := acc[f.words-1] >> 62
	if top == 1 || top == 2 { // sign bit and the bit below it differ
		return errOverflow
	}
	return nil
}

// merge adds o into f entry by entry; both have the same layout.
func (f *fixed) merge(o *fixed) error {
	if f.lsb != o.lsb || f.words != o.words || len(f.v) != len(o.v) {
		return fmt.Errorf("dpbeam: merging exact sums of different layouts")
	}
	for i := 0; i < len(f.v); i += f.words {
		var c uint64
		acc, src := f.v[i:i+f.words], o.v[i:i+f.words]
		for k := range acc {
			acc[k], c = bits.Add64(acc[k], src[k], c)
		}
		if err := f.checkTop(acc); err != nil {
			return err
		}
	}
	return nil
}

// float returns entry i rounded to the nearest float64, ties to even: the
// correctly rounded value of the exact sum.
func (f *fixed) float(i int) float64 {
	acc := f.v[i*f.words : (i+1)*f.words]
	mag := make([]uint64, f.words)
	copy(mag, acc)
	neg := int64(mag[f.words-1]) < 0
	if neg { // two's complement negation
		var c uint64 = 1
		for k := range mag {
			mag[k], c = bits.Add64(^mag[k], 0, c)
		}
	}
	// Highest set bit.
	h := -1
	for k := f.words - 1; k >= 0; k-- {
		if mag[k] != 0 {
			h = 64*k + 63 - bits.LeadingZeros64(mag[k])
			break
		}
	}
	if h < 0 {
		return 0
	}
	bit := func(p int) uint64 { return (mag[p/64] >> uint(p%64)) & 1 }
	var m uint64
	lo := max(0, h-52)
	for p := h; p >= lo; p-- {
		m = m<<1 | bit(p)
	}
	if lo > 0 { // round to nearest, ties to even
		p := lo - 1 // the rounding bit; sticky: any bit below it
		round := bit(p)
		sticky := mag[p/64]&(uint64(1)<<uint(p%64)-1) != 0
		for k := 0; k < p/64 && !sticky; k++ {
			sticky = mag[k] != 0
		}
		if round == 1 && (sticky || m&1 == 1) {
			m++
		}
	}
	v := math.Ldexp(float64(m), lo+f.lsb)
	if neg {
		v = -v
	}
	return v
}

// appendBinary appends the layout and the words of f.
func (f *fixed) appendBinary(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(int64(f.lsb)))
	b = binary.LittleEndian.AppendUint64(b, uint64(f.words))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(f.v)))
	for _, w := range f.v {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return b
}

// readFixed decodes what appendBinary wrote and returns the rest of b.
func readFixed(b []byte) (*fixed, []byte, error) {
	if len(b) < 24 {
		return nil, nil, errCorrupt
	}
	lsb := int(int64(binary.LittleEndian.Uint64(b)))
	words := binary.LittleEndian.Uint64(b[8:])
	n := binary.LittleEndian.Uint64(b[16:])
	b = b[24:]
	if words == 0 || words > 64 || n%words != 0 || n > uint64(len(b))/8 || lsb < -2000 || lsb > 2000 {
		return nil, nil, errCorrupt
	}
	f := &fixed{lsb: lsb, words: int(words), v: make([]uint64, n)}
	for i := range f.v {
		f.v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return f, b[8*n:], nil
}

var errCorrupt = fmt.Errorf("dpbeam: corrupt accumulator encoding")
