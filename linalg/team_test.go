package linalg

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

// TestTeamRun: every task runs exactly once, on a worker id in [0, n), never
// on two tasks at once per id, for teams larger and smaller than GOMAXPROCS
// and with one P, across loops separated by sleeps long enough for the
// goroutines to stop polling.
func TestTeamRun(t *testing.T) {
	for _, procs := range []int{1, 2, 4} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{1, 2, 3, 5} {
			team, err := NewTeam(n)
			if err != nil {
				t.Fatal(err)
			}
			busy := make([]atomic.Int32, n)
			for round, tasks := range []int{0, 1, 7, 64, 3} {
				if round == 3 {
					time.Sleep(3 * teamSpin) // the goroutines sleep now
				}
				count := make([]atomic.Int32, tasks)
				var clash atomic.Bool
				team.s.run(tasks, func(i, g int) {
					if g < 0 || g >= n || busy[g].Add(1) != 1 {
						clash.Store(true)
						return
					}
					count[i].Add(1)
					runtime.Gosched() // let another worker overlap
					busy[g].Add(-1)
				})
				if clash.Load() {
					t.Fatalf("GOMAXPROCS %d, n %d, %d tasks: a worker id out of range or used twice at once", procs, n, tasks)
				}
				for i := range count {
					if c := count[i].Load(); c != 1 {
						t.Fatalf("GOMAXPROCS %d, n %d: task %d of %d ran %d times", procs, n, i, tasks, c)
					}
				}
			}
			team.Close()
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestTeamGo: every function handed to Go runs once before Wait returns,
// whether a goroutine of the Team or the caller (in Wait, or when the Team
// is closed or has one worker) runs it.
func TestTeamGo(t *testing.T) {
	for _, n := range []int{1, 2, 4} {
		team, err := NewTeam(n)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 50 {
			var ran [10]atomic.Int32
			for i := range ran {
				team.Go(func() { ran[i].Add(1) })
			}
			if round%2 == 0 {
				team.s.run(8, func(int, int) {})
			}
			team.Wait()
			for i := range ran {
				if c := ran[i].Load(); c != 1 {
					t.Fatalf("n %d round %d: function %d ran %d times before Wait returned", n, round, i, c)
				}
			}
		}
		team.Close()
		var after atomic.Int32
		team.Go(func() { after.Add(1) })
		if after.Load() != 1 {
			t.Errorf("n %d: a closed Team did not run Go's function on the caller", n)
		}
		team.Close() // idempotent
	}
}

// TestTeamPanics: a panic in a function of Go reaches Wait's caller, and one
// in a loop task reaches run's caller after the other tasks finish; the Team
// keeps working after either.
func TestTeamPanics(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	errBoom := errors.New("boom")
	recovered := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}
	for range 20 {
		team.Go(func() { panic(errBoom) })
		if v := recovered(team.Wait); v != errBoom {
			t.Fatalf("Wait recovered %v, want the function's panic", v)
		}
		var done atomic.Int32
		v := recovered(func() {
			team.s.run(16, func(i, _ int) {
				if i == 5 {
					panic(errBoom)
				}
				done.Add(1)
			})
		})
		if v != errBoom || done.Load() != 15 {
			t.Fatalf("run recovered %v after %d tasks, want the task's panic after 15", v, done.Load())
		}
	}
	var ok atomic.Int32
	team.s.run(4, func(int, int) { ok.Add(1) })
	team.Go(func() { ok.Add(1) })
	team.Wait()
	if ok.Load() != 5 {
		t.Errorf("after panics, %d of 5 functions ran", ok.Load())
	}
}

// TestTeamReleased: Close stops the goroutines, and so does dropping a Team
// without closing it.
func TestTeamReleased(t *testing.T) {
	// Settle: goroutines of earlier tests' Teams may still be exiting.
	base := runtime.NumGoroutine()
	for same := 0; same < 3; {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == base {
			same++
		} else {
			base, same = n, 0
		}
	}
	waitFor := func(what string) {
		t.Helper()
		for range 500 {
			runtime.GC()
			if runtime.NumGoroutine() <= base {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Errorf("%s: %d goroutines, want %d", what, runtime.NumGoroutine(), base)
	}
	team, err := NewTeam(4)
	if err != nil {
		t.Fatal(err)
	}
	team.s.run(10, func(int, int) {})
	if runtime.NumGoroutine() < base+3 {
		t.Fatalf("a Team of 4 runs %d goroutines more, want 3", runtime.NumGoroutine()-base)
	}
	team.Close()
	waitFor("after Close")

	func() {
		team, err := NewTeam(3)
		if err != nil {
			t.Fatal(err)
		}
		team.s.run(10, func(int, int) {})
	}()
	waitFor("after dropping an open Team")
}

func TestTeamErrors(t *testing.T) {
	if _, err := NewTeam(-1); !errors.Is(err, ErrParam) {
		t.Errorf("NewTeam(-1): %v, want ErrParam", err)
	}
	team, err := NewTeam(0)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	if team.Workers() != runtime.GOMAXPROCS(0) {
		t.Errorf("NewTeam(0) has %d workers, want GOMAXPROCS = %d", team.Workers(), runtime.GOMAXPROCS(0))
	}
}

// TestScoreGradRowsTeam: on a Team, ScoreGradRowsPrecision gives the bits of
// a single worker in both precisions, and the same error (the lowest
// failing block's) when the callback fails in several segments.
func TestScoreGradRowsTeam(t *testing.T) {
	const n, d, k, m = 2000, 100, 10, 601
	rnd := rand.New(rand.NewPCG(5, 6))
	x, w := rowsProblem(rnd, n, d, k, 0.1)
	rows := make([]int, m)
	for j := range rows {
		rows[j] = rnd.IntN(n)
	}
	f := func(first int, s []float64, stride int, norms []float64) error {
		for i := range norms {
			for l := range k {
				s[i*stride+l] = math.Tanh(s[i*stride+l]) * float64(1+(first+i)%3)
			}
		}
		return nil
	}
	fail := func(first int, s []float64, stride int, norms []float64) error {
		if first >= 192 {
			return fmt.Errorf("block at %d", first)
		}
		return f(first, s, stride, norms)
	}
	for _, p := range []Precision{Float64, Float32} {
		var want mat.Dense
		if err := ScoreGradRowsPrecision(&want, x, rows, w, f, nil, 1, p); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{2, 3} {
			team, err := NewTeam(size)
			if err != nil {
				t.Fatal(err)
			}
			ws := RowsWork{Team: team}
			for round := range 20 {
				var got mat.Dense
				if err := ScoreGradRowsPrecision(&got, x, rows[:m-round], w, f, &ws, 0, p); err != nil {
					t.Fatal(err)
				}
				var ref mat.Dense
				if err := ScoreGradRowsPrecision(&ref, x, rows[:m-round], w, f, nil, 1, p); err != nil {
					t.Fatal(err)
				}
				if !mat.Equal(&got, &ref) {
					t.Fatalf("%v, team of %d, %d rows: gradient differs bitwise from one worker's", p, size, m-round)
				}
				err := ScoreGradRowsPrecision(&got, x, rows, w, fail, &ws, 0, p)
				if err == nil || err.Error() != "block at 192" {
					t.Fatalf("%v, team of %d: error %v, want the lowest failing block's", p, size, err)
				}
			}
			team.Close()
		}
	}
}

// TestTeamGoexit: a function that calls runtime.Goexit (t.FailNow does)
// on a goroutine of the Team is reported to the caller as a panic, one that
// does so on the caller ends the caller's goroutine and leaves no report
// behind, and either way the Team goes on working with all its workers.
func TestTeamGoexit(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	recovered := func(f func()) (v any) {
		defer func() { v = recover() }()
		f()
		return nil
	}
	onOther := func(f func()) { // f on a goroutine of its own, which may Goexit or panic
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { _ = recover() }()
			f()
		}()
		<-done
	}
	for round := range 10 {
		// A helper's task: the caller's tasks are slow, so the helper
		// claims one.
		var fired atomic.Bool
		v := recovered(func() {
			team.s.run(8, func(_, g int) {
				if g != 0 && !fired.Swap(true) {
					runtime.Goexit()
				}
				time.Sleep(200 * time.Microsecond)
			})
		})
		if !fired.Load() || v != errTeamGoexit {
			t.Fatalf("round %d: helper's Goexit fired %v, run recovered %v; want errTeamGoexit", round, fired.Load(), v)
		}
		// The caller's task, on a goroutine that then ends.
		fired.Store(false)
		onOther(func() {
			team.s.run(8, func(_, g int) {
				if g == 0 && !fired.Swap(true) {
					runtime.Goexit()
				}
			})
		})
		if !fired.Load() {
			t.Fatalf("round %d: the caller ran no task", round)
		}
		// A function of Go: a helper's, reported by Wait; or (whoever
		// takes it) on a goroutine that then ends or panics.
		var started atomic.Bool
		team.Go(func() {
			started.Store(true)
			runtime.Goexit()
		})
		for deadline := time.Now().Add(5 * time.Second); !started.Load(); { // on the helper
			if time.Now().After(deadline) {
				t.Fatal("the helper did not start the function in 5 s")
			}
			time.Sleep(50 * time.Microsecond)
		}
		if v := recovered(team.Wait); v != errTeamGoexit {
			t.Fatalf("round %d: Wait recovered %v, want errTeamGoexit", round, v)
		}
		team.Go(runtime.Goexit)
		onOther(team.Wait)
		if v := recovered(func() { team.s.run(3, func(int, int) {}); team.Wait() }); v != nil {
			t.Fatalf("round %d: a stale report: %v", round, v)
		}
	}
	// Both workers still take tasks.
	var seen [2]atomic.Bool
	for range 200 {
		team.s.run(4, func(_, g int) {
			seen[g].Store(true)
			time.Sleep(20 * time.Microsecond)
		})
		if seen[0].Load() && seen[1].Load() {
			return
		}
	}
	t.Errorf("after Goexits, workers seen: %v %v", seen[0].Load(), seen[1].Load())
}

// TestScoreGradRowsOneWorkerTeam: with a Team of one worker, ScoreGradRows
// runs on the caller alone, whatever its workers argument.
func TestScoreGradRowsOneWorkerTeam(t *testing.T) {
	team, err := NewTeam(1)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	x := NewMatrix32(640, 4)
	for i := range x.Data {
		x.Data[i] = 1
	}
	w := mat.NewDense(2, 4, nil)
	var inside, most atomic.Int32
	f := func(first int, s []float64, stride int, norms []float64) error {
		c := inside.Add(1)
		if c > most.Load() {
			most.Store(c)
		}
		time.Sleep(100 * time.Microsecond)
		inside.Add(-1)
		return nil
	}
	ws := RowsWork{Team: team}
	var g mat.Dense
	if err := ScoreGradRows(&g, x, nil, w, f, &ws, 4); err != nil {
		t.Fatal(err)
	}
	if most.Load() != 1 {
		t.Errorf("a one-worker Team: %d blocks at once, want 1", most.Load())
	}
}

// TestTeamGoInOrder: functions of Go run one at a time and in the order
// given, whichever goroutine runs each, so they may share unlocked state
// (the race detector checks that each one's writes are seen by the next),
// while parallel calls run beside them.
func TestTeamGoInOrder(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		team, err := NewTeam(n)
		if err != nil {
			t.Fatal(err)
		}
		var order []int // written by the functions of Go only, without a lock
		var inside, overlaps atomic.Int32
		next := 0
		for round := range 30 {
			for range 7 {
				i := next
				next++
				team.Go(func() {
					if inside.Add(1) != 1 {
						overlaps.Add(1)
					}
					order = append(order, i)
					time.Sleep(time.Duration(i%3) * 10 * time.Microsecond)
					inside.Add(-1)
				})
			}
			if round%3 != 2 {
				team.s.run(5, func(int, int) { time.Sleep(20 * time.Microsecond) })
			}
			team.Wait()
		}
		team.Close()
		if overlaps.Load() != 0 {
			t.Errorf("n %d: functions of Go overlapped %d times", n, overlaps.Load())
		}
		for i, v := range order {
			if v != i {
				t.Fatalf("n %d: function %d ran in place %d", n, v, i)
			}
		}
		if len(order) != next {
			t.Errorf("n %d: %d of %d functions ran", n, len(order), next)
		}
	}
}

// TestTeamWaitFor: WaitFor(n) returns once all but the n functions handed
// to Go last have returned — with one worker the caller runs them — and
// leaves those n to run on.
func TestTeamWaitFor(t *testing.T) {
	for _, size := range []int{1, 2, 3} {
		team, err := NewTeam(size)
		if err != nil {
			t.Fatal(err)
		}
		for round := range 20 {
			var done [6]atomic.Bool
			for i := range done {
				team.Go(func() {
					time.Sleep(time.Duration(50*(1+i%2)) * time.Microsecond)
					done[i].Store(true)
				})
			}
			n := round % 4
			team.WaitFor(n)
			for i := range len(done) - n {
				if !done[i].Load() {
					t.Fatalf("team of %d, WaitFor(%d): function %d of %d has not returned", size, n, i, len(done))
				}
			}
			team.Wait()
			for i := range done {
				if !done[i].Load() {
					t.Fatalf("team of %d: Wait returned before function %d", size, i)
				}
			}
		}
		team.Close()
	}
}

// TestTeamHurry: a function of Go handed over while a call runs waits for
// the call's tasks to run out, unless Hurry made it urgent: then a goroutine
// of the Team runs it before its next task.
func TestTeamHurry(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	const tasks = 40
	for _, hurry := range []bool{false, true} {
		claimed := int64(-1) // tasks claimed when the function ran
		handed := false      // worker 0's: the function is handed over
		team.s.run(tasks, func(_, g int) {
			if g == 0 && !handed {
				handed = true
				team.Go(func() { claimed = team.s.next.Load() })
				if hurry {
					team.Hurry()
				}
			}
			time.Sleep(200 * time.Microsecond)
		})
		team.Wait()
		switch {
		case hurry && !(claimed >= 0 && claimed < tasks):
			t.Errorf("urgent: ran with %d of %d tasks claimed, want before they ran out", claimed, tasks)
		case !hurry && claimed < tasks:
			t.Errorf("not urgent: ran with %d of %d tasks claimed, want after", claimed, tasks)
		}
	}
}

// TestTeamQueueBounded: handing work over a step ahead, so that the queue
// of functions of Go never empties, keeps it as short as the work queued.
func TestTeamQueueBounded(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	handOver := func() int {
		for range 8 {
			team.Go(func() {})
		}
		return 8
	}
	handOver()
	most := 0
	for range 2000 {
		team.Hurry()
		n := handOver()
		team.s.run(2, func(int, int) {})
		team.WaitFor(n)
		team.s.mu.Lock()
		most = max(most, len(team.s.side))
		team.s.mu.Unlock()
	}
	if most > 64 {
		t.Errorf("the queue reached %d entries for at most 16 functions queued", most)
	}
}

// TestTeamGoexitOfGoInCall: a function of Go that calls runtime.Goexit on
// the caller, which ran it while waiting for a call's last task, ends the
// caller's goroutine and leaves no report for the Team's next user.
func TestTeamGoexitOfGoInCall(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	exited := 0
	for range 20 {
		var returned bool
		var helperIn atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { _ = recover() }() // the helper ran it: Wait reports it
			team.s.run(2, func(_, g int) {
				if g != 0 {
					helperIn.Store(true)
					time.Sleep(2 * time.Millisecond)
					return
				}
				for deadline := time.Now().Add(time.Second); !helperIn.Load() && time.Now().Before(deadline); {
					runtime.Gosched()
				}
				team.Go(runtime.Goexit) // while the helper sleeps in its task
			})
			returned = true
			team.Wait()
		}()
		<-done
		if !returned {
			exited++
		}
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Fatalf("a stale report after the caller's Goexit: %v", v)
				}
			}()
			team.s.run(2, func(int, int) {})
			team.Wait()
		}()
	}
	if exited == 0 {
		t.Error("the caller never ran the function in the call: the test tested nothing")
	}
}

// TestTeamWaitForNegative: WaitFor with n < 0 is WaitFor(0).
func TestTeamWaitForNegative(t *testing.T) {
	team, err := NewTeam(2)
	if err != nil {
		t.Fatal(err)
	}
	defer team.Close()
	var ran atomic.Bool
	team.Go(func() { ran.Store(true) })
	team.WaitFor(-3)
	if !ran.Load() {
		t.Error("WaitFor(-3) returned before the function ran")
	}
}
