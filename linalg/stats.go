package linalg

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Stats accumulates the sufficient statistics of least squares on one-hot
// targets from float32 feature rows x_r with integer labels y_r ∈ [0, K):
//
//   - the Gram matrix G = Σ_r x_r x_rᵀ = XᵀX (d×d, float64),
//   - the per-class sums S_l = Σ_{r: y_r = l} x_r, stored as the K×d matrix
//     ClassSums whose row l is S_l; it is the transpose of XᵀY for the n×K
//     one-hot Y, which is never formed,
//   - the per-class counts and the total row count n.
//
// With K = 0, Stats holds only G and n (unlabelled data).
//
// Stats is streaming and mergeable: feed it batches with Add, possibly on
// several machines, and combine the parts with Merge; serialise it with
// MarshalBinary or MarshalJSON, both exact to the bit.
//
// # Reproducibility
//
// Add(x, y) computes the statistics of the batch exactly as a new Stats
// would (the Gram as by Gram, the class sums from zero in row order) and then
// adds them in with the same float64 additions as Merge. Hence, to the bit:
//
//   - the result of an Add does not depend on Workers, nor on the kernel
//     (assembly or pure Go, see GramPrecision), for either Precision;
//   - s.Add(x) equals s.Merge(t) where t received the single call t.Add(x);
//   - so a single pass s.Add(x₁); …; s.Add(x_m) equals merging, in that
//     order, shards t_i that each received the single call t_i.Add(x_i):
//     s := NewStats(d, K); s.Merge(t₁); …; s.Merge(t_m) — or t₁.Merge(t₂)…,
//     as 0 + a = a exactly; with two parts the order does not matter either
//     (a + b = b + a), with three or more it does.
//
// What differs in the last bits (by about a relative m·2⁻⁵³ of the sum of
// magnitudes): splitting the same rows into different Add calls (one Add of
// x₁ and x₂ stacked is not two Adds), and merging shards that each received
// several Adds, in a grouping other than the one pass. The counts are
// integers and always exact. Float64 addition is not associative; exact
// results independent of grouping would need an exact accumulator of d²
// entries, which costs more than the Gram itself — or quantised rows:
// statistics made by NewQuantizedStats truncate each entry to a grid on
// which every float64 sum is exact, and are then bit-identical for the same
// rows however they are split, ordered and merged (see NewQuantizedStats).
//
// # Concurrency
//
// A Stats is not safe for concurrent use; Add itself runs on Workers
// goroutines.
type Stats struct {
	// Workers is the number of goroutines Add uses; 0 means GOMAXPROCS.
	// Results do not depend on it. It is not serialised.
	Workers int

	// Precision is the arithmetic of the Gram of each Add (see Precision
	// and GramPrecision): Float64, the zero value, exact products; Float32,
	// float32 products and sums within blocks of rows, about twice as
	// fast. The class sums are float64 either way. Results for a given
	// precision do not depend on Workers; statistics made by
	// NewQuantizedStats ignore it and are always exact. It is not
	// serialised, and statistics added with different precisions can be
	// merged. An unknown precision makes Add return an error wrapping
	// ErrParam.
	Precision Precision

	d, k    int
	n       int64
	quantum float64   // 0, or the grid of NewQuantizedStats
	gram    []float64 // d×d row-major, upper triangle used
	sums    []float64 // k×d row-major: row l is the sum of the rows of class l
	counts  []int64   // k
}

// NewStats returns empty statistics for d features and k classes (k = 0 for
// unlabelled data). It returns an error wrapping ErrEmpty if d < 1 and
// ErrShape if k < 0 or d·d is too large to allocate.
func NewStats(d, k int) (*Stats, error) {
	if d < 1 {
		return nil, fmt.Errorf("linalg: statistics of %d features: %w", d, ErrEmpty)
	}
	if k < 0 || d > 1<<24 || k > 1<<40/d {
		return nil, fmt.Errorf("linalg: statistics of %d features and %d classes: %w", d, k, ErrShape)
	}
	return &Stats{
		d:      d,
		k:      k,
		gram:   make([]float64, d*d),
		sums:   make([]float64, k*d),
		counts: make([]int64, k),
	}, nil
}

// Add accumulates the rows of x with their labels (labels[r] is the class of
// row r, in [0, K); labels must be nil when K = 0). The Gram of x is
// computed as by GramPrecision(x, s.Workers, s.Precision), bit for bit, and
// then added in. On error s is unchanged; the error wraps ErrEmpty for an
// empty x, ErrShape if x.Cols ≠ Dim() or len(labels) ≠ x.Rows, ErrLabel for
// a label outside [0, K), ErrParam for an unknown Precision or negative
// Workers, ErrNonFinite for a NaN, ±Inf or an entry larger than MaxAbs in
// magnitude, and, for
// quantised statistics (NewQuantizedStats), ErrInexact if the sums would no
// longer be exact. Quantised statistics quantise a copy of x; x is not
// modified.
//
// Each call costs a d×d scratch Gram and d²/2 additions besides the n·d²/2
// multiply-adds of the Gram itself: pass batches of thousands of rows.
func (s *Stats) Add(x *Matrix32, labels []int) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := gramCheck(x); err != nil {
		return err
	}
	if x.Cols != s.d {
		return fmt.Errorf("linalg: %d features added to statistics of %d: %w", x.Cols, s.d, ErrShape)
	}
	if s.k == 0 && labels != nil {
		return fmt.Errorf("linalg: %d labels added to unlabelled statistics: %w", len(labels), ErrShape)
	}
	if s.k > 0 && len(labels) != x.Rows {
		return fmt.Errorf("linalg: %d labels for %d rows: %w", len(labels), x.Rows, ErrShape)
	}
	for r, l := range labels {
		if l < 0 || l >= s.k {
			return fmt.Errorf("linalg: label %d of row %d, want [0, %d): %w", l, r, s.k, ErrLabel)
		}
	}
	workers, err := workerCount(s.Workers)
	if err != nil {
		return err
	}
	if err := s.Precision.check(); err != nil {
		return err
	}
	if s.quantum > 0 {
		return s.addQuantized(x, labels, workers)
	}
	g, ldc, err := gramAccumulate(x, workers, s.Precision) // also rejects non-finite entries
	if err != nil {
		return err
	}
	t := &Stats{d: s.d, k: s.k, n: int64(x.Rows), gram: make([]float64, s.d*s.d)}
	for i := range s.d {
		copy(t.gram[i*s.d+i:(i+1)*s.d], g[i*ldc+i:i*ldc+s.d])
	}
	if s.k > 0 {
		t.sums, t.counts = classSums(x, labels, s.k, workers)
	}
	s.merge(t)
	return nil
}

// classSums returns the K×d per-class sums of the rows of x, each summed from
// zero in row order in float64, and the per-class counts.
//
// The rows of each class are listed first (a counting sort of the labels),
// so that every row of x is read once, whole and in order, by the task that
// owns its class, instead of once per column chunk: the scatter-add is
// bound by reading x from memory. Tasks are runs of consecutive classes of
// about n/(4·workers) rows, split into column chunks when there are too few
// of them for the workers; a task adds a class's rows in row order, so
// every sum is the same, bit for bit, for any partition and workers count.
func classSums(x *Matrix32, labels []int, k, workers int) ([]float64, []int64) {
	d := x.Cols
	sums := make([]float64, k*d)
	counts := make([]int64, k)
	for _, l := range labels {
		counts[l]++
	}
	start := make([]int, k+1) // rows of class l: order[start[l]:start[l+1]]
	for l, c := range counts {
		start[l+1] = start[l] + int(c)
	}
	order := make([]int, len(labels))
	next := append([]int(nil), start[:k]...)
	for r, l := range labels {
		order[next[l]] = r
		next[l]++
	}

	type task struct{ l0, l1, c0, c1 int }
	target := max(1, len(labels)/(4*workers))
	var groups [][2]int // runs of classes [l0, l1)
	for l0 := 0; l0 < k; {
		l1 := l0 + 1
		for l1 < k && start[l1]-start[l0] < target {
			l1++
		}
		groups = append(groups, [2]int{l0, l1})
		l0 = l1
	}
	const minCols = 64 // columns per chunk at least
	chunks := max(1, min((2*workers+len(groups)-1)/len(groups), d/minCols))
	width := (d + chunks - 1) / chunks
	var tasks []task
	for _, g := range groups {
		for c0 := 0; c0 < d; c0 += width {
			tasks = append(tasks, task{g[0], g[1], c0, min(d, c0+width)})
		}
	}
	parallelFor(len(tasks), workers, func(t int) {
		tk := tasks[t]
		for l := tk.l0; l < tk.l1; l++ {
			dst := sums[l*d+tk.c0 : l*d+tk.c1]
			for _, r := range order[start[l]:start[l+1]] {
				addFloat32(dst, x.Data[r*d+tk.c0:r*d+tk.c1])
			}
		}
	})
	return sums, counts
}

// addFloat32 adds src, converted to float64, into dst (of the same length):
// dst[j] += float64(src[j]), one rounding per entry.
func addFloat32(dst []float64, src []float32) {
	dst = dst[:len(src)]
	j := 0
	for ; j+4 <= len(src); j += 4 {
		s := src[j : j+4 : j+4]
		o := dst[j : j+4 : j+4]
		o[0] += float64(s[0])
		o[1] += float64(s[1])
		o[2] += float64(s[2])
		o[3] += float64(s[3])
	}
	for ; j < len(src); j++ {
		dst[j] += float64(src[j])
	}
}

// Merge adds the statistics o into s, as if s had received o's data (see
// Reproducibility above for what is bit-identical). It returns an error
// wrapping ErrShape if the dimensions, class counts or quantisation steps
// differ, and, for quantised statistics, ErrInexact if the sum would no
// longer be exact (see NewQuantizedStats); s is then unchanged. o is not
// modified (it may be s itself, which doubles s).
func (s *Stats) Merge(o *Stats) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	if o.d != s.d || o.k != s.k {
		return fmt.Errorf("linalg: merging statistics of %d features and %d classes into %d and %d: %w",
			o.d, o.k, s.d, s.k, ErrShape)
	}
	if o.quantum != s.quantum {
		return fmt.Errorf("linalg: merging statistics quantised to %g into statistics quantised to %g (0: none): %w",
			o.quantum, s.quantum, ErrShape)
	}
	if s.quantum > 0 {
		if err := s.checkExact(o); err != nil {
			return err
		}
	}
	s.merge(o)
	return nil
}

// merge adds o into s, entry by entry, upper triangle of the Gram only.
func (s *Stats) merge(o *Stats) {
	d := s.d
	for i := range d {
		dst, src := s.gram[i*d+i:(i+1)*d], o.gram[i*d+i:(i+1)*d]
		for j, v := range src {
			dst[j] += v
		}
	}
	for i, v := range o.sums {
		s.sums[i] += v
	}
	for i, c := range o.counts {
		s.counts[i] += c
	}
	s.n += o.n
}

// check reports a nil or zero-value Stats.
func (s *Stats) check() error {
	if s == nil || s.d == 0 {
		return fmt.Errorf("linalg: nil or uninitialised Stats (use NewStats): %w", ErrEmpty)
	}
	return nil
}

// Dim returns the number of features d.
func (s *Stats) Dim() int { return s.d }

// Classes returns the number of classes K (0 for unlabelled statistics).
func (s *Stats) Classes() int { return s.k }

// Count returns the number of rows accumulated.
func (s *Stats) Count() int64 { return s.n }

// ClassCounts returns a copy of the number of rows of each class.
func (s *Stats) ClassCounts() []int64 { return append([]int64(nil), s.counts...) }

// Gram returns a copy of the Gram matrix XᵀX (d×d).
func (s *Stats) Gram() *mat.SymDense {
	g := mat.NewSymDense(s.d, nil)
	raw := g.RawSymmetric()
	for i := range s.d {
		copy(raw.Data[i*raw.Stride+i:i*raw.Stride+s.d], s.gram[i*s.d+i:(i+1)*s.d])
	}
	return g
}

// ClassSums returns a copy of the per-class sums as a K×d matrix whose row l
// is the sum of the rows of class l: the transpose of XᵀY for one-hot Y
// (n×K). It returns nil when K = 0.
func (s *Stats) ClassSums() *mat.Dense {
	if s.k == 0 {
		return nil
	}
	return mat.NewDense(s.k, s.d, append([]float64(nil), s.sums...))
}
