package accountant

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// Conformance tests against ../../shared/testdata/accounting_vectors.json:
// reference values from Google dp_accounting 0.6.0, Opacus 1.5.4 and 50-digit
// mpmath evaluations (schema, peers and tolerances in the README beside the
// file). PLD peers are tested with the PLD accountant, not here.

const vectorsPath = "../../shared/testdata/accounting_vectors.json"

// vnum is a JSON number that may also be "+Inf", "-Inf", "NaN" or null
// (Valid false).
type vnum struct {
	V     float64
	Valid bool
}

func (n *vnum) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = vnum{}
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		*n = vnum{v, true}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*n = vnum{v, true}
	return nil
}

type vpeer struct {
	Value          json.RawMessage `json:"value"`
	OptimalOrder   vnum            `json:"optimal_order"`
	EpsilonAtValue vnum            `json:"epsilon_at_value"`
	Skipped        string          `json:"skipped"`
	Error          string          `json:"error"`
}

func (p vpeer) num(t *testing.T) vnum {
	t.Helper()
	var n vnum
	if len(p.Value) == 0 {
		return n
	}
	require.NoError(t, json.Unmarshal(p.Value, &n))
	return n
}

func (p vpeer) list(t *testing.T) []vnum {
	t.Helper()
	var l []vnum
	require.NoError(t, json.Unmarshal(p.Value, &l))
	return l
}

type vcomponent struct {
	Sigma float64 `json:"sigma"`
	Q     float64 `json:"q"`
	Count int     `json:"count"`
}

type vcase struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Inputs struct {
		Epsilon       vnum         `json:"epsilon"`
		Delta         vnum         `json:"delta"`
		Sigma         float64      `json:"sigma"`
		Q             float64      `json:"q"`
		Steps         int          `json:"steps"`
		Query         string       `json:"query"`
		Components    []vcomponent `json:"components"`
		Orders        []float64    `json:"orders"`
		N             int          `json:"source_dataset_size"`
		M             int          `json:"sample_size"`
		TableOrders   []float64    `json:"table_orders"`
		TargetEpsilon float64      `json:"target_epsilon"`
		TargetDelta   float64      `json:"target_delta"`
	} `json:"inputs"`
	Reference struct {
		Value    json.RawMessage `json:"value"`
		LogValue vnum            `json:"log_value"`
	} `json:"reference"`
	Peers map[string]vpeer `json:"peers"`
}

func (c vcase) ref(t *testing.T) vnum {
	t.Helper()
	return vpeer{Value: c.Reference.Value}.num(t)
}

func (c vcase) refList(t *testing.T) []vnum {
	t.Helper()
	return vpeer{Value: c.Reference.Value}.list(t)
}

type vfile struct {
	Meta struct {
		Counts   map[string]int `json:"counts"`
		Settings struct {
			DpaRDPOrders []float64 `json:"dpa_rdp_orders"`
		} `json:"settings"`
	} `json:"meta"`
	Cases []vcase `json:"cases"`
}

func loadVectors(t *testing.T) *vfile {
	t.Helper()
	b, err := os.ReadFile(vectorsPath)
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("reference vectors %s not found (the shared/ checkout must sit beside the repository)", vectorsPath)
	}
	require.NoError(t, err)
	var f vfile
	require.NoError(t, json.Unmarshal(b, &f))
	return &f
}

func casesOf(t *testing.T, f *vfile, kind string) []vcase {
	t.Helper()
	var out []vcase
	for _, c := range f.Cases {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	require.Equal(t, f.Meta.Counts[kind], len(out), "case count of kind %s", kind)
	return out
}

// componentsEvent builds the composition the vectors describe: count
// releases of each component, q = 1 a full batch.
func componentsEvent(cs []vcomponent) Event {
	var evs []Event
	for _, c := range cs {
		var e Event = Gaussian{NoiseMultiplier: c.Sigma}
		if c.Q < 1 {
			e = PoissonSampled{Rate: c.Q, Event: e}
		}
		evs = append(evs, Repeated{Event: e, Count: c.Count})
	}
	return Composed{Events: evs}
}

// relErr returns |got − want|/|want| (0 when both are equal, including ±Inf).
func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

// worst tracks the worst relative error of a comparison, for the log.
type worst struct {
	name string
	rel  float64
	id   string
	n    int
}

func (w *worst) add(id string, rel float64) {
	w.n++
	if rel > w.rel || math.IsNaN(rel) {
		w.rel, w.id = rel, id
	}
}

func (w *worst) log(t *testing.T) {
	t.Helper()
	t.Logf("%s: %d comparisons, worst relative error %.3g (%s)", w.name, w.n, w.rel, w.id)
}

func checkRel(t *testing.T, w *worst, id, what string, got, want, tol float64) {
	t.Helper()
	r := relErr(got, want)
	w.add(id, r)
	if !(r <= tol) {
		t.Errorf("%s: %s = %.17g, want %.17g (rel err %.3g > %.0e)", id, what, got, want, r, tol)
	}
}

func TestVectorsGaussianDelta(t *testing.T) {
	f := loadVectors(t)
	w := &worst{name: "exact δ vs reference"}
	for _, c := range casesOf(t, f, "gaussian_delta") {
		t.Run(c.ID, func(t *testing.T) {
			e := Gaussian{NoiseMultiplier: c.Inputs.Sigma}
			l, err := GDP{}.LogDelta(e, c.Inputs.Epsilon.V)
			require.NoError(t, err)
			ref := c.ref(t)
			// Tolerance: rel 1e-9 (README, closed form); log δ abs 1e-9.
			if ref.V >= 1e-300 {
				d, err := GDP{}.Delta(e, c.Inputs.Epsilon.V)
				require.NoError(t, err)
				checkRel(t, w, c.ID, "δ", d, ref.V, 1e-9)
			}
			if c.Reference.LogValue.Valid {
				if got, want := l, c.Reference.LogValue.V; math.Abs(got-want) > 1e-9 {
					t.Errorf("log δ = %.15g, want %.15g", got, want)
				}
			}
			// Round trip: ε(δ_ref) gives back the input ε.
			if ref.V > 1e-300 && c.Inputs.Epsilon.V > 0 {
				eps, err := GDP{}.Epsilon(e, ref.V)
				require.NoError(t, err)
				if r := relErr(eps, c.Inputs.Epsilon.V); r > 1e-9 {
					t.Errorf("ε(δ_ref) = %.15g, want %.15g (rel %.2g)", eps, c.Inputs.Epsilon.V, r)
				}
			}
		})
	}
	w.log(t)
}

func TestVectorsComposedGaussian(t *testing.T) {
	f := loadVectors(t)
	we := &worst{name: "exact vs reference (full batch)"}
	wr := &worst{name: "rdp vs dpa_rdp"}
	for _, c := range casesOf(t, f, "composed_gaussian") {
		t.Run(c.ID, func(t *testing.T) {
			e := componentsEvent(c.Inputs.Components)
			fullBatch := true
			for _, cp := range c.Inputs.Components {
				fullBatch = fullBatch && cp.Q == 1
			}
			query := func(acc Accountant) (float64, error) {
				if c.Inputs.Query == "epsilon" {
					return acc.Epsilon(e, c.Inputs.Delta.V)
				}
				return acc.Delta(e, c.Inputs.Epsilon.V)
			}
			got, err := query(GDP{})
			if fullBatch {
				require.NoError(t, err)
				checkRel(t, we, c.ID, c.Inputs.Query, got, c.ref(t).V, 1e-9)
			} else if !errors.Is(err, ErrUnsupported) {
				t.Errorf("exact on a subsampled composition: err = %v, want ErrUnsupported", err)
			}
			checkRDPPeer(t, wr, c, query)
		})
	}
	we.log(t)
	wr.log(t)
}

// checkRDPPeer compares the RDP accountant with dp_accounting's RdpAccountant
// (same DEFAULT orders, same fractional series, same conversion): rel 1e-6,
// the brief's bar (the README's 1e-9 for a port is logged, not enforced).
func checkRDPPeer(t *testing.T, w *worst, c vcase, query func(Accountant) (float64, error)) {
	t.Helper()
	p, ok := c.Peers["dpa_rdp"]
	want := p.num(t)
	if !ok || !want.Valid {
		return
	}
	got, err := query(RDP{})
	require.NoError(t, err)
	checkRel(t, w, c.ID, "rdp "+c.Inputs.Query, got, want.V, 1e-6)
}

var _ = fmt.Sprint

func TestVectorsPoissonSampledGaussian(t *testing.T) {
	f := loadVectors(t)
	w := &worst{name: "rdp vs dpa_rdp"}
	wRef := &worst{name: "rdp ε / reference (≥ 1 − 1e-6 required)"}
	for _, c := range casesOf(t, f, "poisson_sampled_gaussian") {
		t.Run(c.ID, func(t *testing.T) {
			e := Repeated{Count: c.Inputs.Steps, Event: PoissonSampled{Rate: c.Inputs.Q, Event: Gaussian{NoiseMultiplier: c.Inputs.Sigma}}}
			query := func(acc Accountant) (float64, error) {
				if c.Inputs.Query == "epsilon" {
					return acc.Epsilon(e, c.Inputs.Delta.V)
				}
				return acc.Delta(e, c.Inputs.Epsilon.V)
			}
			checkRDPPeer(t, w, c, query)
			if _, err := query(GDP{}); c.Inputs.Q < 1 && !errors.Is(err, ErrUnsupported) {
				t.Errorf("exact on Poisson sampling: err = %v, want ErrUnsupported", err)
			}
			// RDP is an upper bound: never below the tightest valid upper
			// bound by more than its own error.
			if ref := c.ref(t); ref.Valid && c.Inputs.Query == "epsilon" {
				got, err := query(RDP{})
				require.NoError(t, err)
				wRef.add(c.ID, ref.V/got-1)
				if got < ref.V*(1-1e-6) {
					t.Errorf("rdp ε = %.10g below reference %.10g", got, ref.V)
				}
			}
		})
	}
	w.log(t)
	wRef.log(t)
}

func TestVectorsSampledWithoutReplacement(t *testing.T) {
	f := loadVectors(t)
	w := &worst{name: "rdp ε vs dpa_rdp"}
	wt := &worst{name: "one-step table vs dpa_rdp_single_step_table"}
	for _, c := range casesOf(t, f, "sampled_without_replacement_gaussian") {
		t.Run(c.ID, func(t *testing.T) {
			in := c.Inputs
			one := SampledWithoutReplacement{N: in.N, BatchSize: in.M, Event: Gaussian{NoiseMultiplier: in.Sigma, Adj: ReplaceOne}}
			e := Repeated{Count: in.Steps, Event: one}
			got, order, err := RDP{}.EpsilonOrder(e, in.Delta.V)
			require.NoError(t, err)
			p := c.Peers["dpa_rdp"]
			// Tolerance: rel 1e-6, the brief's bar for RDP ε (README: 1e-9
			// for a port; met except in pub-wor-009, see worIllConditioned).
			checkRel(t, w, c.ID, "ε", got, p.num(t).V, 1e-6)
			if order != p.OptimalOrder.V {
				t.Errorf("optimal order = %v, want %v", order, p.OptimalOrder.V)
			}
			table, err := RDP{Orders: in.TableOrders}.Curve(one)
			require.NoError(t, err)
			want := c.Peers["dpa_rdp_single_step_table"].list(t)
			require.Len(t, want, len(table))
			wg := worGaussian{q: float64(in.M) / float64(in.N), z: in.Sigma}
			for i, a := range in.TableOrders {
				if worIllConditioned(&wg, a) {
					// The forward differences of Theorem 27 cancel
					// catastrophically here (large σ, high order): both
					// dp_accounting and this port return rounding noise,
					// amplified ~2^α, that no two libms reproduce alike.
					r := relErr(table[i], want[i].V)
					if r > 1e-9 {
						t.Logf("α=%v: ill-conditioned forward differences; got %.6g, dp_accounting %.6g", a, table[i], want[i].V)
					}
					if !(r < 0.1) {
						t.Errorf("α=%v: rdp = %.6g, dp_accounting %.6g: beyond rounding noise", a, table[i], want[i].V)
					}
					continue
				}
				checkRel(t, wt, c.ID, fmt.Sprintf("rdp(α=%v)", a), table[i], want[i].V, 1e-9)
			}
		})
	}
	w.log(t)
	wt.log(t)
}

func TestVectorsRDPOrders(t *testing.T) {
	f := loadVectors(t)
	wInt := &worst{name: "integer orders vs reference"}
	wFrac := &worst{name: "fractional orders vs dpa_rdp"}
	for _, c := range casesOf(t, f, "rdp_orders") {
		t.Run(c.ID, func(t *testing.T) {
			in := c.Inputs
			e := PoissonSampled{Rate: in.Q, Event: Gaussian{NoiseMultiplier: in.Sigma}}
			got, err := RDP{Orders: in.Orders}.Curve(e)
			require.NoError(t, err)
			ref := c.refList(t)
			dpa := c.Peers["dpa_rdp"].list(t)
			for i, a := range in.Orders {
				if a == math.Trunc(a) {
					// rel 1e-8, abs 1e-15 (README, integer α).
					r := relErr(got[i], ref[i].V)
					if math.Abs(got[i]-ref[i].V) <= 1e-15 {
						r = 0
					}
					wInt.add(c.ID, r)
					if r > 1e-8 {
						t.Errorf("α=%v: rdp = %.17g, want %.17g", a, got[i], ref[i].V)
					}
					continue
				}
				// dp_accounting-style fractional series: rel 1e-9, +Inf must
				// match; abs 1e-14 because near α = 1 the RDP is
				// log(A_α)/(α−1) with A_α = 1 + O(1e-8), known to only
				// ~1e-16 absolute by any double-precision sum.
				r := relErr(got[i], dpa[i].V)
				if math.Abs(got[i]-dpa[i].V) <= 1e-14 {
					r = 0
				}
				wFrac.add(c.ID, r)
				if !(r <= 1e-9) {
					t.Errorf("α=%v: rdp = %.17g, dp_accounting %.17g (rel %.3g)", a, got[i], dpa[i].V, r)
				}
				// And it is an upper bound of the exact value.
				if got[i] < ref[i].V*(1-1e-9)-1e-15 {
					t.Errorf("α=%v: rdp = %.17g below exact %.17g", a, got[i], ref[i].V)
				}
			}
		})
	}
	wInt.log(t)
	wFrac.log(t)
}

func TestVectorsDefaultOrders(t *testing.T) {
	f := loadVectors(t)
	require.Equal(t, f.Meta.Settings.DpaRDPOrders, DefaultOrders())
}

// worIllConditioned reports whether the Theorem 27 bound at order a uses a
// forward difference Δ^k whose rounding error (≈ 2^k·max s·ulp) exceeds 1e-3
// of its magnitude while that term is the binding one of its min.
func worIllConditioned(w *worGaussian, a float64) bool {
	if a > worExactMax {
		return false
	}
	if w.diffs == nil {
		w.forwardDiffs()
	}
	for _, ai := range []int{int(math.Floor(a)), int(math.Ceil(a))} {
		for i := 3; i <= ai; i++ {
			for _, k := range []int{2 * (i / 2), 2 * ((i + 1) / 2)} {
				noise := float64(k)*math.Ln2 + w.cgf(float64(k-1)) + math.Log(0x1p-52)
				if w.diffs[k-1]-noise < math.Log(1e3) &&
					math.Log(4)+0.5*(w.diffs[2*(i/2)-1]+w.diffs[2*((i+1)/2)-1]) < math.Ln2+w.cgf(float64(i-1)) {
					return true
				}
			}
		}
	}
	return false
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }
