package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/dpopt/dpopt/optim"
)

// progressWriter returns w if a progress bar should be drawn on it: not with
// --json, and only when w is a terminal.
func progressWriter(w io.Writer, asJSON bool) io.Writer {
	if asJSON {
		return nil
	}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return w
}

// progressDelay is how long work runs before a progress bar appears, so
// that short runs print nothing. A variable for tests.
var progressDelay = 2 * time.Second

// progress is a progress bar on a terminal that appears only once the work
// has taken progressDelay. It has two forms. With a fixed number of runs
// (sweep) the bar counts runs and its description shows the running
// solver's stage. Without (train) the bar follows the solver's stages: a
// bar with a count and a predicted time for stages of several units (steps,
// rows, Hessians), a spinner for single-unit stages and for work that
// reports nothing (loading the data). A nil *progress does nothing.
type progress struct {
	mu        sync.Mutex
	desc      string         // what the command is doing: "loading mnist", "training fc"
	stage     optim.Progress // the solver's last report; Stage "" for none
	runs      int            // the number of runs the bar counts; 0: follow the solver
	runsDone  int
	stop      chan struct{}
	ended     chan struct{}
	closeOnce sync.Once
}

// startProgress starts a progress bar on w that counts runs (0: that
// follows the solver's stages) and says desc; a nil w gives a nil, silent
// progress.
func startProgress(w io.Writer, runs int, desc string) *progress {
	if w == nil {
		return nil
	}
	p := &progress{desc: desc, runs: runs, stop: make(chan struct{}), ended: make(chan struct{})}
	go p.loop(w)
	return p
}

// barView is what the bar shows at one moment.
type barView struct {
	desc      string
	max, done int // max −1: a spinner
	key       string
}

// view returns what the bar should show now. A change of key asks for a
// new bar (another stage or maximum).
func (p *progress) view() barView {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stage
	if p.runs > 0 {
		desc := p.desc
		if st.Stage != "" {
			desc += fmt.Sprintf(" · %s", st.Stage)
			if st.Total > 1 {
				desc += fmt.Sprintf(" %d/%d", st.Done, st.Total)
			}
		}
		return barView{desc: desc, max: p.runs, done: p.runsDone, key: "runs"}
	}
	desc := p.desc
	if st.Stage != "" {
		desc += ": " + st.Stage
	}
	if st.Total > 1 {
		return barView{desc: desc, max: st.Total, done: st.Done, key: fmt.Sprintf("%s/%d", desc, st.Total)}
	}
	return barView{desc: desc, max: -1, key: desc}
}

// newBar returns a progress bar of max units (−1: a spinner) on w.
func newBar(w io.Writer, max int, desc string) *progressbar.ProgressBar {
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetWidth(30),
	}
	if max > 0 {
		opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true))
	}
	return progressbar.NewOptions(max, opts...)
}

func (p *progress) loop(w io.Writer) {
	defer close(p.ended)
	select {
	case <-p.stop:
		return
	case <-time.After(progressDelay):
	}
	var bar *progressbar.ProgressBar
	key := ""
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	for {
		v := p.view()
		if bar == nil || v.key != key {
			if bar != nil {
				bar.Finish() // stops a spinner's own redrawing
				bar.Clear()
			}
			bar, key = newBar(w, v.max, v.desc), v.key
		}
		bar.Describe(v.desc)
		if v.max > 0 {
			bar.Set(v.done)
		} else {
			bar.Add(1)
		}
		select {
		case <-p.stop:
			bar.Finish()
			bar.Clear()
			return
		case <-tick.C:
		}
	}
}

// describe sets what the bar says, and forgets the last solver stage.
func (p *progress) describe(desc string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.desc, p.stage = desc, optim.Progress{}
	p.mu.Unlock()
}

// runDone counts one finished run.
func (p *progress) runDone() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.runsDone++
	p.mu.Unlock()
}

// watch returns ctx carrying a callback that shows the solver's progress on
// the bar; a nil progress returns ctx, and the solvers report nothing.
func (p *progress) watch(ctx context.Context) context.Context {
	if p == nil {
		return ctx
	}
	return optim.WithProgress(ctx, p.update)
}

// update records the solver's latest report.
func (p *progress) update(s optim.Progress) {
	p.mu.Lock()
	p.stage = s
	p.mu.Unlock()
}

// finish removes the bar; it may be called more than once.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.closeOnce.Do(func() { close(p.stop) })
	<-p.ended
}
