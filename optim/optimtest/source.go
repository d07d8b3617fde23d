package optimtest

import (
	"sync"

	"github.com/dpopt/dpopt/dp"
)

// A CountingSource is a dp.Source that passes every draw on to Src and counts
// them: the N(0, 1) draws of Normal and the uniform words of Uint64. It does
// not implement dp.GaussianAdder, so all Gaussian noise that the dp package
// adds goes through Normal and is counted.
//
// It is safe for concurrent use if Src is (the counts are guarded by a mutex),
// but a solver should draw from one goroutine only.
type CountingSource struct {
	// Src supplies the draws. Required.
	Src dp.Source
	// OnNormal, if not nil, is called before the first Normal call with a
	// non-empty dst, once (the suite cancels a context from it).
	OnNormal func()

	mu       sync.Mutex
	normals  int
	uniforms int
	fired    bool
}

var _ dp.Source = (*CountingSource)(nil)

// NewCountingSource returns a CountingSource over src.
func NewCountingSource(src dp.Source) *CountingSource { return &CountingSource{Src: src} }

// Uint64 implements rand.Source, counting one uniform draw.
func (c *CountingSource) Uint64() uint64 {
	c.mu.Lock()
	c.uniforms++
	c.mu.Unlock()
	return c.Src.Uint64()
}

// Normal implements dp.Source, counting len(dst) normal draws.
func (c *CountingSource) Normal(dst []float64) {
	c.mu.Lock()
	c.normals += len(dst)
	fire := !c.fired && len(dst) > 0 && c.OnNormal != nil
	if fire {
		c.fired = true
	}
	c.mu.Unlock()
	if fire {
		c.OnNormal()
	}
	c.Src.Normal(dst)
}

// Normals returns the number of N(0, 1) draws so far.
func (c *CountingSource) Normals() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.normals
}

// Uniforms returns the number of Uint64 calls so far.
func (c *CountingSource) Uniforms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uniforms
}
