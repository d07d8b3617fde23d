package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpopt/dpopt/optim"
)

// lockedBuffer is a bytes.Buffer safe for the bar's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProgressOnlyOnTerminals checks that no bar is drawn with --json or on
// a writer that is not a terminal, and that the solvers are then not watched.
func TestProgressOnlyOnTerminals(t *testing.T) {
	var buf bytes.Buffer
	if progressWriter(&buf, false) != nil {
		t.Error("a bar on a bytes.Buffer, want none")
	}
	if progressWriter(os.Stderr, true) != nil {
		t.Error("a bar with --json, want none")
	}
	var p *progress // what startProgress returns for no terminal
	ctx := context.Background()
	if p.watch(ctx) != ctx {
		t.Error("a nil progress wraps the context, want the solvers unwatched")
	}
	p.describe("x")
	p.runDone()
	p.finish()
}

// TestProgressDelay checks that work shorter than progressDelay draws nothing.
func TestProgressDelay(t *testing.T) {
	var buf lockedBuffer
	p := startProgress(&buf, 0, "training fc")
	p.update(optim.Progress{Stage: "steps", Done: 1, Total: 10})
	p.finish()
	if s := buf.String(); s != "" {
		t.Errorf("a run shorter than %v drew %q, want nothing", progressDelay, s)
	}
}

// TestProgressFollowsStages checks what the bars say: train's follows the
// solver's stages with a count, sweep's counts runs and names the stage.
func TestProgressFollowsStages(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the bar's redraws")
	}
	defer func(d time.Duration) { progressDelay = d }(progressDelay)
	progressDelay = 0
	wait := func() { time.Sleep(400 * time.Millisecond) } // > 2 redraws

	var train lockedBuffer
	p := startProgress(&train, 0, "loading mnist")
	wait()
	p.describe("training fc")
	p.update(optim.Progress{Stage: "preconditioner", Done: 0, Total: 1})
	wait()
	p.update(optim.Progress{Stage: "steps", Done: 4, Total: 10})
	wait()
	p.finish()
	for _, want := range []string{"loading mnist", "training fc: preconditioner", "training fc: steps", "(4/10)"} {
		if !strings.Contains(train.String(), want) {
			t.Errorf("train's bar never says %q: %q", want, train.String())
		}
	}

	var sweep lockedBuffer
	p = startProgress(&sweep, 7, "fc ε=1")
	p.runDone()
	p.runDone()
	p.update(optim.Progress{Stage: "steps", Done: 3, Total: 10})
	wait()
	p.finish()
	for _, want := range []string{"fc ε=1 · steps 3/10", "(2/7)"} {
		if !strings.Contains(sweep.String(), want) {
			t.Errorf("sweep's bar never says %q: %q", want, sweep.String())
		}
	}
}
