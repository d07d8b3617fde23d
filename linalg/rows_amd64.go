//go:build amd64 && !purego

package linalg

// rowsPrefetchT0 issues a PREFETCHT0 for each 64-byte line of the n float32
// values at p (n ≥ 1).
//
//go:noescape
func rowsPrefetchT0(p *float32, n int)

// rowsPrefetch asks for the cache lines of row to be brought into the cache
// ahead of their use. It only hints: no value changes, and nothing faults.
func rowsPrefetch(row []float32) {
	if len(row) > 0 {
		rowsPrefetchT0(&row[0], len(row))
	}
}
