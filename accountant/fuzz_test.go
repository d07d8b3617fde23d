package accountant_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/dpopt/dpopt/accountant"
)

// maxFuzzInput bounds the inputs the fuzz targets decode: a saved ledger or
// event larger than this is not needed to reach any code path, and large
// compositions make single executions slow.
const maxFuzzInput = 4 << 10

// cheap reports whether an event is cheap to account for: no subsampled
// event (whose PLD or RDP accounting costs milliseconds to seconds), and so
// every execution of the fuzz targets stays fast.
func cheap(e accountant.Event) bool {
	switch e := e.(type) {
	case accountant.Gaussian:
		return true
	case accountant.Repeated:
		return cheap(e.Event)
	case accountant.Composed:
		if len(e.Events) > 64 {
			return false
		}
		for _, c := range e.Events {
			if !cheap(c) {
				return false
			}
		}
		return true
	}
	return false
}

// FuzzReadLedger checks that ReadLedger never panics, and that a ledger it
// accepts is consistent: a finite ε spent, the same ledger after a save and
// a reload, and a Spend that either records or refuses, never both.
func FuzzReadLedger(f *testing.F) {
	for _, acc := range []accountant.Accountant{accountant.GDP{}, accountant.RDP{}} {
		l, err := accountant.NewLedger(accountant.Budget{Epsilon: 8, Delta: 1e-5}, acc)
		if err != nil {
			f.Fatal(err)
		}
		for _, e := range []accountant.Event{
			accountant.Gaussian{NoiseMultiplier: 2},
			accountant.Repeated{Event: accountant.Gaussian{NoiseMultiplier: 4}, Count: 3},
			accountant.Composed{Events: []accountant.Event{accountant.Gaussian{NoiseMultiplier: 3}, accountant.Gaussian{NoiseMultiplier: 5}}},
		} {
			if err := l.Spend("seed", e); err != nil {
				f.Fatal(err)
			}
		}
		var buf bytes.Buffer
		if _, err := l.WriteTo(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte(`{"version":1,"accountant":"exact","budget":{"epsilon":1,"delta":1e-5},"entries":[]}`))
	f.Add([]byte(`{"version":1,"accountant":"exact","budget":{"epsilon":0.1,"delta":1e-5},"entries":[{"label":"x","time":"2024-01-01T00:00:00Z","event":{"type":"gaussian","noise_multiplier":0.5}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzInput {
			t.Skip("input too large")
		}
		// Skip, before accounting for them, ledgers whose events are slow to account for.
		var raw struct {
			Entries []struct {
				Event json.RawMessage `json:"event"`
			} `json:"entries"`
		}
		if json.Unmarshal(b, &raw) == nil {
			for _, e := range raw.Entries {
				if ev, err := accountant.UnmarshalEvent(e.Event); err == nil && !cheap(ev) {
					t.Skip("slow event")
				}
			}
		}
		l, err := accountant.ReadLedger(bytes.NewReader(b))
		if err != nil {
			if l != nil {
				t.Fatalf("ReadLedger returned a ledger with error %v", err)
			}
			return
		}
		eps := l.Epsilon()
		if math.IsNaN(eps) || eps < 0 {
			t.Fatalf("loaded ledger spent ε = %v", eps)
		}
		var buf bytes.Buffer
		if _, err := l.WriteTo(&buf); err != nil {
			t.Fatalf("saving a loaded ledger: %v", err)
		}
		m, err := accountant.ReadLedger(&buf)
		if err != nil {
			t.Fatalf("reloading a saved ledger: %v\n%s", err, buf.Bytes())
		}
		if m.Epsilon() != eps || len(m.Entries()) != len(l.Entries()) || m.Budget() != l.Budget() {
			t.Fatalf("reloaded ledger: ε %v, %d entries, budget %v; want %v, %d, %v",
				m.Epsilon(), len(m.Entries()), m.Budget(), eps, len(l.Entries()), l.Budget())
		}
		// One more release: recorded within budget, or refused with nothing changed.
		n := len(m.Entries())
		err = m.Spend("fuzz", accountant.Gaussian{NoiseMultiplier: 10})
		switch {
		case err == nil:
			if len(m.Entries()) != n+1 || m.Epsilon() > m.Budget().Epsilon || m.Epsilon() < eps {
				t.Fatalf("after Spend: %d entries, ε %v (was %v), budget %v", len(m.Entries()), m.Epsilon(), eps, m.Budget().Epsilon)
			}
		case errors.Is(err, accountant.ErrBudgetExceeded):
			if len(m.Entries()) != n || m.Epsilon() != eps {
				t.Fatalf("refused Spend changed the ledger: %d entries, ε %v", len(m.Entries()), m.Epsilon())
			}
		default:
			t.Fatalf("Spend of a valid event: %v", err)
		}
	})
}

// FuzzUnmarshalEvent checks that UnmarshalEvent never panics, that what it
// accepts is valid, and that encoding it again decodes to the same encoding.
func FuzzUnmarshalEvent(f *testing.F) {
	for _, e := range []accountant.Event{
		accountant.Gaussian{NoiseMultiplier: 1.1},
		accountant.Gaussian{NoiseMultiplier: 2, Adj: accountant.ReplaceOne},
		accountant.PoissonSampled{Rate: 0.01, Event: accountant.Gaussian{NoiseMultiplier: 1}},
		accountant.SampledWithoutReplacement{N: 100, BatchSize: 10, Event: accountant.Gaussian{NoiseMultiplier: 1, Adj: accountant.ReplaceOne}},
		accountant.Repeated{Event: accountant.Composed{Events: []accountant.Event{accountant.Gaussian{NoiseMultiplier: 1}, accountant.Gaussian{NoiseMultiplier: 2}}}, Count: 7},
	} {
		b, err := accountant.MarshalEvent(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"repeated","count":0,"event":{"type":"gaussian","noise_multiplier":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > maxFuzzInput {
			t.Skip("input too large")
		}
		e, err := accountant.UnmarshalEvent(b)
		if err != nil {
			if e != nil {
				t.Fatalf("UnmarshalEvent returned an event with error %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded an invalid event: %v", err)
		}
		enc, err := accountant.MarshalEvent(e)
		if err != nil {
			t.Fatalf("encoding a decoded event: %v", err)
		}
		e2, err := accountant.UnmarshalEvent(enc)
		if err != nil {
			t.Fatalf("decoding %s: %v", enc, err)
		}
		enc2, err := accountant.MarshalEvent(e2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoding: %s, want %s (err %v)", enc2, enc, err)
		}
		if cheap(e) {
			// GDP is exact and fast for full-batch events: ε must be a number.
			if eps, err := (accountant.GDP{}).Epsilon(e, 1e-5); err != nil || math.IsNaN(eps) || eps < 0 {
				t.Fatalf("GDP ε of %s = %v, %v", enc, eps, err)
			}
		}
	})
}
