package optim

import (
	"context"
	"testing"
)

// TestProgressAbsentIsFree checks that without WithProgress the solvers'
// progress reports are a nil check: no context is wrapped, nothing is
// allocated, nothing is called; and that a callback is not charged an
// allocation per report either.
func TestProgressAbsentIsFree(t *testing.T) {
	ctx := context.Background()
	if WithProgress(ctx, nil) != ctx {
		t.Error("WithProgress(ctx, nil) wraps ctx, want ctx itself")
	}
	prog := progressFrom(ctx)
	if prog != nil {
		t.Fatal("a context without WithProgress carries a progress callback")
	}
	if a := testing.AllocsPerRun(1000, func() {
		prog.report("steps", 1, 2)
		p := startPass(ctx, "gram", 0)
		p.add(10, 20)
		p.end(20)
	}); a > 1 { // the passProgress itself, at most once per pass
		t.Errorf("reports without a callback allocate %v times, want at most 1 (the pass)", a)
	}
	calls := 0
	watched := progressFrom(WithProgress(ctx, func(Progress) { calls++ }))
	if a := testing.AllocsPerRun(1000, func() { watched.report("steps", 1, 2) }); a != 0 {
		t.Errorf("a report to a callback allocates %v times, want 0", a)
	}
	if calls == 0 {
		t.Error("the callback was never called")
	}
}
