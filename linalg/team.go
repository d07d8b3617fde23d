package linalg

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// teamSpin is how long an idle goroutine of a Team, or a caller waiting for
// one, polls for work before it sleeps. It is several times the serial part
// of a DP-SGD step (the model update and the checks before the next
// gradient, tens of microseconds), and short enough that a Team left idle
// costs nothing noticeable.
const teamSpin = 250 * time.Microsecond

// teamPoll is the number of polls between yields of a polling goroutine, to
// the Go scheduler and to the operating system (teamYield).
const teamPoll = 16

// A Team is a fixed set of goroutines for many short parallel calls: the
// steps of a DP-SGD loop, each a fraction of a millisecond. Fresh goroutines
// per call sleep between calls, and waking a sleeping thread costs the
// operating system (and a virtual machine's hypervisor) tens to hundreds of
// microseconds, paid at every step. A Team's goroutines instead poll for
// work for up to a quarter of a millisecond after their last task, yielding
// to the Go scheduler and to the operating system as they do, and only then
// sleep.
//
// A Team of n workers is the calling goroutine and n−1 goroutines of its
// own. ScoreGradRows runs its segments on the Team set in its RowsWork (the
// caller takes segments too); Go hands a function to the Team, so that work
// that does not depend on the parallel call — a DP-SGD run's next noise,
// drawn in pieces — fills the time a worker would otherwise wait: functions
// of Go run one at a time, in the order given, on whichever goroutine has
// no task of a call to take (the caller's included, in a call or in Wait
// and WaitFor), or, once Hurry has made them urgent, on the Team's
// goroutines before their next task. Results never depend on the Team:
// ScoreGradRows gives the same bits with or without one.
//
// Close releases the goroutines; a Team that is no longer referenced is
// closed by the runtime. One goroutine at a time may use a Team (Go, Hurry,
// Wait, WaitFor and the calls running on it). The functions it runs may run
// on that goroutine too: a call's tasks always; a function of Go when that
// goroutine has no task left in a call, or in Wait or WaitFor if no
// goroutine of the Team has started it, or at once if the Team has one
// worker or is closed. A panic in either is re-raised on the using
// goroutine, as is a runtime.Goexit on one of the Team's goroutines (as a
// panic: the Team replaces a goroutine that exits so); a Goexit on the
// using goroutine ends it, and the Team forgets it.
type Team struct{ s *teamState }

// errTeamGoexit is the panic value that reports a function of a Team that
// called runtime.Goexit (t.FailNow, say) instead of returning.
var errTeamGoexit = errors.New("linalg: a function run by a Team called runtime.Goexit")

// teamState is the part of a Team its goroutines share (they never refer to
// the Team itself, so that an unreferenced Team can be cleaned up).
type teamState struct {
	n int // workers, the caller included

	// Functions handed over with Go: queued under mu, counted in pending
	// until they return.
	mu       sync.Mutex
	side     []func() // side[head:] are queued
	head     int
	sideBusy atomic.Int32 // 1 while a function of Go runs: one at a time
	pushed   atomic.Int64 // functions of Go queued so far
	popped   atomic.Int64 // functions of Go started so far (the next is number popped);
	// pushed − popped = len(side) − head, read without the lock
	urgent   atomic.Int64 // functions numbered below it are urgent (Hurry)
	pending  atomic.Int32
	sidePnc  any // the first panic of a function of Go, re-raised by Wait
	loopPnc  any // the first panic of a loop task, re-raised by run
	sleepers atomic.Int32
	wake     chan struct{}
	closed   atomic.Bool

	// The current parallel loop: its fields are written by the caller while
	// no goroutine is in it (active = 0), then published by storing its
	// generation in open; a goroutine counts itself active before it reads
	// open, so the caller, having reset open, can wait for active = 0.
	open     atomic.Uint64 // the generation of the open loop, or 0
	gen      uint64        // the caller's last generation
	active   atomic.Int32
	next     atomic.Int64 // the next task to claim
	finished atomic.Int64 // tasks done
	tasks    int64
	fn       func(task, worker int)
}

// NewTeam returns a Team of workers workers, the caller included; 0 means
// GOMAXPROCS. A Team of one worker runs everything on the caller.
func NewTeam(workers int) (*Team, error) {
	if workers < 0 {
		return nil, fmt.Errorf("linalg: team of %d workers, want ≥ 0 (0 means GOMAXPROCS): %w", workers, ErrParam)
	}
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	s := &teamState{n: workers, wake: make(chan struct{}, workers)}
	for g := 1; g < workers; g++ {
		go s.helper(g)
	}
	t := &Team{s: s}
	runtime.AddCleanup(t, func(s *teamState) { s.close() }, s)
	return t, nil
}

// Workers returns the number of workers of the Team, the caller included.
func (t *Team) Workers() int { return t.s.n }

// Close stops the Team's goroutines once they finish what they are running.
// Functions handed to Go and not yet started are run by Close's caller
// first, and Close waits for them all as Wait does (and panics as Wait
// does). Close is idempotent; a closed Team runs everything on its caller.
func (t *Team) Close() {
	defer t.s.close()
	t.Wait()
}

func (s *teamState) close() {
	if s.closed.Swap(true) {
		return
	}
	for range s.n {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Go queues f to run once, after the functions queued before it have
// returned and never at the same time as another function of Go, on
// whichever goroutine of the Team has no task of a parallel call to take
// (the caller's included: in a call, once it has no task left, or in Wait
// and WaitFor), or before such tasks once Hurry has made it urgent; so
// functions of Go may share state without locks, as the draws from one
// random Source do. With one worker, or once the Team is
// closed, f runs at once on the caller. Go does not wait for f; Wait and
// WaitFor do.
func (t *Team) Go(f func()) {
	s := t.s
	if s.n == 1 || s.closed.Load() {
		s.runSide(f, false)
		return
	}
	s.pending.Add(1)
	s.mu.Lock()
	s.side = append(s.side, f)
	s.pushed.Add(1)
	s.mu.Unlock()
	s.signal()
}

// Hurry makes every function handed to Go so far urgent: the Team's
// goroutines run them before tasks of a parallel call. The others — those
// handed over after the last Hurry, or all if it is never called — run when
// a goroutine has no task of a call to take. A loop that hands over its
// next iteration's work calls Hurry at the start of each iteration, so that
// the work due by its end goes first and the rest fills the time workers
// would otherwise wait.
func (t *Team) Hurry() { t.s.urgent.Store(t.s.pushed.Load()) }

// Wait returns once every function handed to Go has returned, running on
// the caller, in turn, the ones no goroutine has started yet. If one of them
// panicked, Wait panics with the first panic's value. It is WaitFor(0).
func (t *Team) Wait() { t.WaitFor(0) }

// WaitFor returns once at most n of the functions handed to Go have not
// returned: all but the n handed over last, since they run in order. Those
// it waits for and no goroutine has started yet, it runs on the caller. A
// loop that hands over the work of its next iteration before it waits for
// the work of this one keeps a whole iteration of slack. If a function that
// returned panicked, WaitFor panics with the first panic's value.
func (t *Team) WaitFor(n int) {
	s := t.s
	n = max(n, 0)
	returned := false
	defer func() {
		if !returned { // a Goexit in a function run here: forget the report
			s.await(func() bool { return s.pending.Load() <= int32(n) })
			s.mu.Lock()
			s.sidePnc = nil
			s.mu.Unlock()
		}
	}()
	s.await(func() bool {
		// The oldest queued function is one waited for while more than n
		// are queued.
		for s.queuedN() > int64(n) && s.trySide() {
		}
		return s.pending.Load() <= int32(n)
	})
	returned = true
	s.mu.Lock()
	p := s.sidePnc
	s.sidePnc = nil
	s.mu.Unlock()
	if p != nil {
		panic(p)
	}
}

// runSide runs a function of Go, keeping its panic (or Goexit) for Wait;
// a queued one (run by trySide) then frees the turn and counts itself done.
func (s *teamState) runSide(f func(), queued bool) {
	returned := false
	defer func() {
		if !returned {
			s.keepPanic(&s.sidePnc, recover())
		}
		if queued {
			s.sideBusy.Store(0)
			s.pending.Add(-1)
		}
	}()
	f()
	returned = true
}

// trySide runs the oldest function of Go not yet started, if there is one
// and no other function of Go is running, and reports whether it ran one.
func (s *teamState) trySide() bool {
	if s.queuedN() == 0 || !s.sideBusy.CompareAndSwap(0, 1) {
		return false
	}
	s.mu.Lock()
	if s.head == len(s.side) {
		s.mu.Unlock()
		s.sideBusy.Store(0)
		return false
	}
	f := s.side[s.head]
	s.side[s.head] = nil
	switch s.head++; {
	case s.head == len(s.side):
		s.side, s.head = s.side[:0], 0
	case s.head >= 32 && 2*s.head >= len(s.side):
		// A queue handed a step ahead never empties: move the queued
		// functions down rather than let side grow with every Go.
		n := copy(s.side, s.side[s.head:])
		clear(s.side[n:])
		s.side, s.head = s.side[:n], 0
	}
	s.popped.Add(1)
	s.mu.Unlock()
	s.runSide(f, true)
	return true
}

// hurried reports whether the next function of Go to start is urgent.
func (s *teamState) hurried() bool {
	return s.queuedN() > 0 && s.popped.Load() < s.urgent.Load()
}

// queuedN returns the number of functions of Go queued and not started. Read
// without the lock it may be short by the functions queued while it reads
// (pushed is read first), never long; a goroutine about to sleep that reads
// 0 too early is woken by the Go that queued the function (signal).
func (s *teamState) queuedN() int64 { return s.pushed.Load() - s.popped.Load() }

// signal wakes a sleeping goroutine, if any, after work was published.
func (s *teamState) signal() {
	if s.sleepers.Load() > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run calls fn(task, worker) for every task in [0, tasks), on the caller
// (worker 0) and the Team's goroutines (workers 1 … n−1, each task claimed
// once), and returns when all have returned. A panic of fn is re-raised on
// the caller after the other tasks finish.
func (s *teamState) run(tasks int, fn func(task, worker int)) {
	if tasks <= 0 {
		return
	}
	s.fn, s.tasks = fn, int64(tasks)
	s.next.Store(0)
	s.finished.Store(0)
	s.gen++
	s.open.Store(s.gen)
	s.signal()
	// Closed however the caller leaves: a Goexit in one of the caller's
	// tasks unwinds it, and its goroutine is gone with the report.
	returned, inSide := false, false
	defer func() {
		s.open.Store(0)
		s.await(func() bool { return s.active.Load() == 0 })
		s.fn = nil
		if !returned {
			s.loopPnc = nil
			if inSide { // a Goexit in a function of Go run here: forgotten, as WaitFor does
				s.mu.Lock()
				s.sidePnc = nil
				s.mu.Unlock()
			}
		}
	}()
	s.work(0)
	// Waiting for the goroutines' last tasks, the caller takes functions
	// of Go.
	s.await(func() bool {
		if s.finished.Load() == s.tasks {
			return true
		}
		inSide = true
		s.trySide()
		inSide = false
		return s.finished.Load() == s.tasks
	})
	returned = true
	if p := s.loopPnc; p != nil {
		s.loopPnc = nil
		panic(p)
	}
}

// work claims and runs tasks of the open loop as worker g until none is
// left; a goroutine of the Team (g ≠ 0) runs urgent functions of Go
// between its tasks.
func (s *teamState) work(g int) {
	for {
		if g != 0 && s.hurried() { // urgent functions of Go between tasks
			s.trySide()
		}
		i := s.next.Add(1) - 1
		if i >= s.tasks {
			return
		}
		s.task(int(i), g)
	}
}

// keepPanic keeps p, the value recovered from a function of the Team that
// did not return, in *slot unless it holds one already. A nil p is a
// runtime.Goexit (the goroutine goes on exiting), kept as errTeamGoexit.
func (s *teamState) keepPanic(slot *any, p any) {
	if p == nil {
		p = errTeamGoexit
	}
	s.mu.Lock()
	if *slot == nil {
		*slot = p
	}
	s.mu.Unlock()
}

// task runs one task, keeping its panic (or Goexit) for run, and counts it
// finished.
func (s *teamState) task(i, g int) {
	returned := false
	defer func() {
		if !returned {
			s.keepPanic(&s.loopPnc, recover())
		}
		s.finished.Add(1)
	}()
	s.fn(i, g)
	returned = true
}

// await polls done, yielding to the scheduler, for up to teamSpin, then
// sleeps between polls. It is used for work that is already running.
func (s *teamState) await(done func() bool) {
	start := time.Now()
	for i := 1; !done(); i++ {
		if i%teamPoll == 0 {
			runtime.Gosched()
			teamYield()
			if i%(16*teamPoll) == 0 && time.Since(start) > teamSpin {
				time.Sleep(10 * time.Microsecond)
			}
		}
	}
}

// helper is the loop of the Team's goroutine g: urgent functions of Go
// first, then tasks of an open loop, then other functions of Go (functions
// of Go one goroutine at a time); polling for up to teamSpin when there is
// none of these, then sleeping until signalled.
func (s *teamState) helper(g int) {
	inLoop := false
	defer func() {
		// Only a runtime.Goexit in a function it ran ends a helper early
		// (panics are recovered): undo its count and start a replacement.
		if inLoop {
			s.active.Add(-1)
		}
		if !s.closed.Load() {
			go s.helper(g)
		}
	}()
	idle := time.Now()
	for i := 1; ; i++ {
		// Urgent functions of Go first (Hurry).
		if s.hurried() && s.trySide() {
			idle, i = time.Now(), 0
			continue
		}
		// A loop is joined only while open, counted in active so that
		// the caller can wait for the goroutines that saw it open.
		if s.open.Load() != 0 {
			s.active.Add(1)
			inLoop = true
			worked := s.open.Load() != 0 && s.next.Load() < s.tasks
			if worked {
				s.work(g)
			}
			inLoop = false
			s.active.Add(-1)
			if worked {
				idle, i = time.Now(), 0
				continue
			}
		}
		// Then functions of Go: a DP-SGD run's next noise, in the time a
		// worker would otherwise wait.
		if s.trySide() {
			idle, i = time.Now(), 0
			continue
		}
		if s.closed.Load() {
			return
		}
		if i%teamPoll != 0 {
			continue
		}
		runtime.Gosched()
		teamYield()
		if i%(16*teamPoll) != 0 || time.Since(idle) < teamSpin {
			continue
		}
		// Sleep; a poster that missed the count finds the work re-checked.
		s.sleepers.Add(1)
		if s.queuedN() == 0 && s.open.Load() == 0 && !s.closed.Load() {
			<-s.wake
		}
		s.sleepers.Add(-1)
		idle, i = time.Now(), 0
	}
}
