package optim

import "context"

// Progress reports how far a solver is through one stage of its work, for
// progress bars. Stages come in a fixed order per solver, each reported from
// Done = 0 up to Done = Total:
//
//	LS:     "statistics" (rows), then "solve" (1 unit; K with PerClass)
//	FC:     "gram" (rows), "preconditioner" (1 unit), "steps" (Steps)
//	SGD:    "steps" (Steps)
//	Newton: "hessians" (Steps·K: one per class and step)
//
// "statistics" and "gram" count rows; the in-memory solvers report them at
// the start and end of the pass, SolveStream after every block. Progress
// depends only on n, d, K and the solver's parameters, never on the values
// of the data, so reporting it releases nothing private (n is public; see
// the package documentation).
type Progress struct {
	// Stage names the work in progress (see above).
	Stage string
	// Done is the number of units of the stage finished, from 0 to Total;
	// it never decreases within a stage.
	Done int
	// Total is the number of units of the stage, or 0 while it is unknown
	// (a stream whose length is learnt by its first pass); the last report
	// of a stage has Done = Total > 0.
	Total int
}

// progressKey is the context key of WithProgress.
type progressKey struct{}

// WithProgress returns a copy of ctx that carries f. Every solver's Solve
// (and SolveStream) given such a context calls f with its Progress: when a
// stage starts and each time a unit of it finishes. The calls come from the
// goroutine that called Solve, one at a time, so f must return quickly (a
// progress bar should only record the value). A nil f returns ctx. Without
// WithProgress the solvers report nothing and pay one context lookup per
// Solve.
func WithProgress(ctx context.Context, f func(Progress)) context.Context {
	if f == nil {
		return ctx
	}
	return context.WithValue(ctx, progressKey{}, f)
}

// progressFunc is the progress callback of a context, or nil.
type progressFunc func(Progress)

// progressFrom returns the callback ctx carries, or nil.
func progressFrom(ctx context.Context) progressFunc {
	f, _ := ctx.Value(progressKey{}).(func(Progress))
	return f
}

// report calls f, if not nil, with the stage and its count.
func (f progressFunc) report(stage string, done, total int) {
	if f != nil {
		f(Progress{Stage: stage, Done: done, Total: total})
	}
}

// passProgress reports the rows of one pass over a stream as a stage.
type passProgress struct {
	f           progressFunc
	stage       string
	rows, total int // rows read; total 0 while unknown
}

// startPass reports the start of a pass of total rows (0: unknown) as stage.
func startPass(ctx context.Context, stage string, total int) *passProgress {
	p := &passProgress{f: progressFrom(ctx), stage: stage, total: total}
	p.f.report(stage, 0, total)
	return p
}

// add counts a block of rows of a pass of total rows (0: still unknown; a
// stream learns its length when it is opened).
func (p *passProgress) add(rows, total int) {
	p.rows += rows
	p.total = total
	if p.total == 0 || p.rows < p.total {
		p.f.report(p.stage, p.rows, p.total)
	}
}

// end reports the pass complete, n rows of n.
func (p *passProgress) end(n int) {
	p.f.report(p.stage, n, n)
}
