package accountant

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLedgerRefusesOverBudget(t *testing.T) {
	for _, acc := range []Accountant{GDP{}, RDP{}} {
		t.Run(acc.Name(), func(t *testing.T) {
			l, err := NewLedger(Budget{Epsilon: 2, Delta: 1e-5}, acc)
			require.NoError(t, err)
			step := Gaussian{NoiseMultiplier: 5}
			n := 0
			for ; n < 1000; n++ {
				before, entries := l.Epsilon(), len(l.Entries())
				err := l.Spend("step", step)
				if err != nil {
					if !errors.Is(err, ErrBudgetExceeded) {
						t.Fatalf("Spend: err = %v, want ErrBudgetExceeded", err)
					}
					if l.Epsilon() != before || len(l.Entries()) != entries {
						t.Fatalf("refused Spend changed the ledger: ε %v → %v, entries %d → %d", before, l.Epsilon(), entries, len(l.Entries()))
					}
					break
				}
				if l.Epsilon() > 2 {
					t.Fatalf("ε = %v over budget after an accepted Spend", l.Epsilon())
				}
			}
			if n == 0 || n == 1000 {
				t.Fatalf("accepted %d steps, want some but not all", n)
			}
			// What the ledger spent is what the accountant says of the
			// composed history.
			want, err := acc.Epsilon(Repeated{Event: step, Count: n}, 1e-5)
			require.NoError(t, err)
			if got := l.Epsilon(); relErr(got, want) > 1e-12 {
				t.Errorf("ledger ε = %v, accountant on the history %v", got, want)
			}
			// Check is a what-if: nothing changes either way.
			eps, err := l.Check(step)
			if !errors.Is(err, ErrBudgetExceeded) || eps <= 2 {
				t.Errorf("Check(step) = %v, %v; want ε > 2 and ErrBudgetExceeded", eps, err)
			}
			if len(l.Entries()) != n {
				t.Errorf("Check recorded an entry")
			}
		})
	}
}

func TestLedgerErrors(t *testing.T) {
	_, err := NewLedger(Budget{Epsilon: 0, Delta: 1e-5}, GDP{})
	var pe *ParamError
	require.ErrorAs(t, err, &pe)
	_, err = NewLedger(Budget{Epsilon: 1, Delta: 1}, GDP{})
	require.ErrorAs(t, err, &pe)
	_, err = NewLedger(Budget{Epsilon: 1, Delta: 1e-5}, nil)
	require.Error(t, err)

	l, err := NewLedger(Budget{Epsilon: 10, Delta: 1e-5}, GDP{})
	require.NoError(t, err)
	tests := []struct {
		name   string
		e      Event
		target error
	}{
		{"nil", nil, nil},
		{"invalid", Gaussian{NoiseMultiplier: -1}, nil},
		{"unsupported", PoissonSampled{Rate: 0.1, Event: Gaussian{NoiseMultiplier: 1}}, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Spend(tt.name, tt.e)
			if err == nil || (tt.target != nil && !errors.Is(err, tt.target)) {
				t.Errorf("Spend = %v, want error %v", err, tt.target)
			}
			if len(l.Entries()) != 0 || l.Epsilon() != 0 {
				t.Errorf("failed Spend changed the ledger")
			}
		})
	}
	require.NoError(t, l.Spend("a", Gaussian{NoiseMultiplier: 3}))
	err = l.Spend("mixed", Gaussian{NoiseMultiplier: 3, Adj: ReplaceOne})
	if err == nil || len(l.Entries()) != 1 {
		t.Errorf("mixing adjacencies: err = %v, entries %d", err, len(l.Entries()))
	}
}

// A run saved and reloaded keeps counting from where it stopped, with
// identical numbers, and refuses once the budget is spent.
func TestLedgerSaveResume(t *testing.T) {
	for _, acc := range []Accountant{GDP{}, RDP{}} {
		t.Run(acc.Name(), func(t *testing.T) {
			l, err := NewLedger(Budget{Epsilon: 1.5, Delta: 1e-6}, acc)
			require.NoError(t, err)
			l.now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC) }
			var step Event = Gaussian{NoiseMultiplier: 40}
			if acc.Name() == "rdp" {
				step = PoissonSampled{Rate: 0.01, Event: Gaussian{NoiseMultiplier: 1.1}}
				require.NoError(t, l.Spend("gram", Gaussian{NoiseMultiplier: 30}))
			}
			for i := 0; i < 50; i++ {
				require.NoError(t, l.Spend("run 1", step))
			}
			var buf bytes.Buffer
			_, err = l.WriteTo(&buf)
			require.NoError(t, err)
			saved := buf.String()

			r, err := ReadLedger(strings.NewReader(saved))
			require.NoError(t, err)
			if r.Epsilon() != l.Epsilon() {
				t.Errorf("reloaded ε = %v, want exactly %v", r.Epsilon(), l.Epsilon())
			}
			if r.Accountant().Name() != acc.Name() || r.Budget() != l.Budget() {
				t.Errorf("reloaded accountant/budget differ")
			}
			got, want := r.Entries(), l.Entries()
			require.Len(t, got, len(want))
			for i := range got {
				if got[i].Label != want[i].Label || !got[i].Time.Equal(want[i].Time) || !eventsEqual(got[i].Event, want[i].Event) {
					t.Fatalf("entry %d: got %+v, want %+v", i, got[i], want[i])
				}
			}
			// Saving again gives the same bytes.
			buf.Reset()
			_, err = r.WriteTo(&buf)
			require.NoError(t, err)
			if buf.String() != saved {
				t.Errorf("re-saved ledger differs:\n%s\nwant\n%s", buf.String(), saved)
			}
			// Run 2 continues on the same budget until refused; a third
			// run loaded afterwards refuses at once.
			n := 0
			for ; n < 100000; n++ {
				if err := r.Spend("run 2", step); err != nil {
					require.ErrorIs(t, err, ErrBudgetExceeded)
					break
				}
			}
			if n == 0 || n == 100000 {
				t.Fatalf("run 2 spent %d steps", n)
			}
			var b2 bytes.Buffer
			_, err = r.WriteTo(&b2)
			require.NoError(t, err)
			r3, err := ReadLedger(&b2)
			require.NoError(t, err)
			require.ErrorIs(t, r3.Spend("run 3", step), ErrBudgetExceeded)
			if r3.Epsilon() != r.Epsilon() {
				t.Errorf("run 3 ε = %v, want %v", r3.Epsilon(), r.Epsilon())
			}
		})
	}
}

func TestReadLedgerErrors(t *testing.T) {
	good := `{"version":1,"accountant":"exact","budget":{"epsilon":1,"delta":1e-5},"entries":[{"label":"a","time":"2025-01-01T00:00:00Z","event":{"type":"gaussian","noise_multiplier":3}}]}`
	_, err := ReadLedger(strings.NewReader(good))
	require.NoError(t, err)
	for name, in := range map[string]string{
		"unknown accountant": strings.Replace(good, `"exact"`, `"magic"`, 1),
		"bad version":        strings.Replace(good, `"version":1`, `"version":2`, 1),
		"bad budget":         strings.Replace(good, `"epsilon":1`, `"epsilon":-1`, 1),
		"bad event":          strings.Replace(good, `"noise_multiplier":3`, `"noise_multiplier":0`, 1),
		"unknown field":      strings.Replace(good, `"version":1`, `"version":1,"x":2`, 1),
		"unsupported event":  strings.Replace(good, `{"type":"gaussian","noise_multiplier":3}`, `{"type":"poisson_sampled","rate":0.5,"event":{"type":"gaussian","noise_multiplier":3}}`, 1),
		"not json":           `{`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadLedger(strings.NewReader(in)); err == nil {
				t.Errorf("ReadLedger accepted %s", in)
			}
		})
	}
}

func TestLedgerConcurrent(t *testing.T) {
	l, err := NewLedger(Budget{Epsilon: 1, Delta: 1e-5}, GDP{})
	require.NoError(t, err)
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if l.Spend("x", Gaussian{NoiseMultiplier: 30}) == nil {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(l.Entries()) != accepted || l.Epsilon() > 1 {
		t.Errorf("accepted %d, entries %d, ε %v", accepted, len(l.Entries()), l.Epsilon())
	}
	want, err := GDP{}.Epsilon(Repeated{Event: Gaussian{NoiseMultiplier: 30}, Count: accepted + 1}, 1e-5)
	require.NoError(t, err)
	if want <= 1 {
		t.Errorf("ledger stopped early: %d releases, one more would give ε = %v", accepted, want)
	}
	_, err = json.Marshal(l)
	require.NoError(t, err)
}
