package badinput_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/dpopt/dpopt/accountant"
	"github.com/dpopt/dpopt/dp"
	"github.com/dpopt/dpopt/features"
	"github.com/dpopt/dpopt/linalg"
	"github.com/dpopt/dpopt/losses"
	"github.com/dpopt/dpopt/optim"
	"github.com/dpopt/dpopt/optim/optimtest"
)

// want is the error a bad input must get: errors.Is(err, is) when is is set,
// errors.As(err, &*accountant.ParamError) when param is set, and as(err) when
// as is set. At least one is set in every case.
type want struct {
	is    error
	param bool
	as    func(error) bool
	about string // what as checks, for messages
}

func is(err error) want { return want{is: err} }

var param = want{param: true}

// notPD wants a *linalg.NotPositiveDefiniteError wrapping ErrNotPositiveDefinite.
var notPD = want{is: linalg.ErrNotPositiveDefinite, about: "*linalg.NotPositiveDefiniteError",
	as: func(err error) bool { var e *linalg.NotPositiveDefiniteError; return errors.As(err, &e) }}

// syntax wants a *json.SyntaxError.
var syntax = want{about: "*json.SyntaxError",
	as: func(err error) bool { var e *json.SyntaxError; return errors.As(err, &e) }}

func (w want) String() string {
	var s []string
	if w.is != nil {
		s = append(s, fmt.Sprintf("errors.Is %q", w.is))
	}
	if w.param {
		s = append(s, "errors.As *accountant.ParamError")
	}
	if w.as != nil {
		s = append(s, "errors.As "+w.about)
	}
	return strings.Join(s, " and ")
}

func (w want) match(err error) bool {
	if w.is != nil && !errors.Is(err, w.is) {
		return false
	}
	if w.param {
		var pe *accountant.ParamError
		if !errors.As(err, &pe) {
			return false
		}
	}
	if w.as != nil && !w.as(err) {
		return false
	}
	return true
}

// apiCase is one bad call of the library. call returns the call's main result
// (nil, or a number that must not be NaN) and its error. If ledger is set,
// the call must leave it without entries.
type apiCase struct {
	name   string
	want   want
	call   func(t *testing.T) (any, error)
	ledger func() *accountant.Ledger
	// gap, if set, says why the error has no sentinel or type yet: the case
	// then checks everything but the kind of error, and logs the gap.
	gap string
}

// isNil reports whether v is nil or a nil pointer, slice, map, func or interface.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Func, reflect.Interface, reflect.Chan:
		return r.IsNil()
	}
	return false
}

// runCase runs c, turning a panic into a test failure.
func runCase(t *testing.T, c apiCase) {
	t.Helper()
	var (
		res      any
		err      error
		panicked any
	)
	func() {
		defer func() { panicked = recover() }()
		res, err = c.call(t)
	}()
	switch {
	case panicked != nil:
		t.Fatalf("panic: %v", panicked)
	case err == nil:
		t.Fatalf("got no error (result %v), want %v", res, c.want)
	case c.gap != "" && c.want.as != nil && !c.want.as(err):
		t.Errorf("got error %q (%T), want %s", err, err, c.want.about)
	case c.gap != "":
		t.Logf("taxonomy gap: %s (got %q)", c.gap, err)
	case !c.want.match(err):
		t.Errorf("got error %q (%T), want %v", err, err, c.want)
	}
	switch v := res.(type) {
	case float64:
		if math.IsNaN(v) {
			t.Errorf("got result NaN with the error, want a number or nothing")
		}
	case int, int64, bool:
	default:
		if !isNil(res) {
			t.Errorf("got result %v with the error, want nil", res)
		}
	}
	if c.ledger != nil {
		if l := c.ledger(); l != nil && len(l.Entries()) != 0 {
			t.Errorf("ledger has %d entries after the error, want 0", len(l.Entries()))
		}
	}
}

// TestBadInput runs every library case of the table, and TestCLIBadInput
// every command-line case; the total is logged.
func TestBadInput(t *testing.T) {
	var all []apiCase
	for _, part := range []func() []apiCase{linalgCases, dpCases, accountantCases, lossesCases, optimCases, featuresCases} {
		all = append(all, part()...)
	}
	seen, gaps := map[string]bool{}, 0
	for _, c := range all {
		if c.gap != "" {
			gaps++
		}
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) { runCase(t, c) })
	}
	t.Logf("%d library bad-input cases, %d of them taxonomy gaps", len(all), gaps)
}

// ---------------------------------------------------------------- linalg

func m32(rows, cols int, v ...float32) *linalg.Matrix32 {
	m := linalg.NewMatrix32(rows, cols)
	for i := range m.Data {
		m.Data[i] = float32(i%7) + 1
	}
	copy(m.Data, v)
	return m
}

func spd(d int) *mat.SymDense {
	a := mat.NewSymDense(d, nil)
	for i := range d {
		a.SetSym(i, i, 2)
		if i > 0 {
			a.SetSym(i, i-1, 0.5)
		}
	}
	return a
}

func symWith(d int, i, j int, v float64) *mat.SymDense {
	a := spd(d)
	a.SetSym(i, j, v)
	return a
}

func linalgCases() []apiCase {
	nan32, inf32 := float32(math.NaN()), float32(math.Inf(1))
	bad := map[string]struct {
		x    *linalg.Matrix32
		want want
	}{
		"nil":          {nil, is(linalg.ErrEmpty)},
		"no rows":      {linalg.NewMatrix32(0, 3), is(linalg.ErrEmpty)},
		"no cols":      {&linalg.Matrix32{Rows: 3, Cols: 0}, is(linalg.ErrEmpty)},
		"short data":   {&linalg.Matrix32{Rows: 3, Cols: 3, Data: make([]float32, 8)}, is(linalg.ErrShape)},
		"NaN":          {m32(3, 3, 1, nan32), is(linalg.ErrNonFinite)},
		"+Inf":         {m32(3, 3, 1, 2, 3, inf32), is(linalg.ErrNonFinite)},
		"huge 1e31":    {m32(3, 3, 1, 2, 1e31), is(linalg.ErrNonFinite)},
		"huge -2e30":   {m32(3, 3, -2e30), is(linalg.ErrNonFinite)},
		"negative dim": {&linalg.Matrix32{Rows: -1, Cols: 3}, is(linalg.ErrEmpty)},
	}
	var cs []apiCase
	for _, name := range sortedKeys(bad) {
		b := bad[name]
		cs = append(cs,
			apiCase{name: "linalg/Gram/" + name, want: b.want, call: func(*testing.T) (any, error) { return linalg.Gram(b.x, 2) }},
			apiCase{name: "linalg/Matrix32.Check/" + name, want: b.want, call: func(*testing.T) (any, error) { return nil, b.x.Check() }},
			apiCase{name: "linalg/Stats.Add/" + name, want: b.want, call: func(*testing.T) (any, error) {
				s, err := linalg.NewStats(3, 2)
				if err != nil {
					return nil, fmt.Errorf("setup: %v", err)
				}
				var labels []int
				if b.x != nil && b.x.Rows > 0 {
					labels = make([]int, b.x.Rows)
				}
				return nil, s.Add(b.x, labels)
			}},
		)
	}
	x := m32(4, 3)
	cs = append(cs,
		apiCase{name: "linalg/AddGram/dst wrong size", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return nil, linalg.AddGram(mat.NewSymDense(2, nil), x, 1)
		}},
		apiCase{name: "linalg/MulRtX/rows mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return nil, linalg.MulRtX(mat.NewDense(2, 3, nil), mat.NewDense(5, 2, nil), x, 1)
		}},
		apiCase{name: "linalg/MulRtX/dst mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return nil, linalg.MulRtX(mat.NewDense(2, 4, nil), mat.NewDense(4, 2, nil), x, 1)
		}},
		apiCase{name: "linalg/MulXWt/cols mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return nil, linalg.MulXWt(mat.NewDense(4, 2, nil), x, mat.NewDense(2, 4, nil), 1)
		}},
		apiCase{name: "linalg/RowNorms/dst length", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return nil, linalg.RowNorms(make([]float64, 3), x, 1)
		}},
		apiCase{name: "linalg/NewStats/d=0", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) { return linalg.NewStats(0, 2) }},
		apiCase{name: "linalg/NewStats/k<0", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) { return linalg.NewStats(3, -1) }},
		apiCase{name: "linalg/Stats.Add/label out of range", want: is(linalg.ErrLabel), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			return nil, s.Add(x, []int{0, 1, 2, 0})
		}},
		apiCase{name: "linalg/Stats.Add/negative label", want: is(linalg.ErrLabel), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			return nil, s.Add(x, []int{0, -1, 1, 0})
		}},
		apiCase{name: "linalg/Stats.Add/labels length", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			return nil, s.Add(x, []int{0, 1})
		}},
		apiCase{name: "linalg/Stats.Add/dim mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(5, 2)
			return nil, s.Add(x, []int{0, 1, 1, 0})
		}},
		apiCase{name: "linalg/Stats.Merge/dim mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(5, 2)
			o, _ := linalg.NewStats(3, 2)
			return nil, s.Merge(o)
		}},
		apiCase{name: "linalg/Stats.UnmarshalBinary/garbage", want: is(linalg.ErrFormat), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			return nil, s.UnmarshalBinary([]byte("not statistics at all"))
		}},
		apiCase{name: "linalg/Stats.UnmarshalBinary/truncated", want: is(linalg.ErrFormat), call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			if err := s.Add(x, []int{0, 1, 1, 0}); err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			b, err := s.MarshalBinary()
			if err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			u, _ := linalg.NewStats(3, 2)
			return nil, u.UnmarshalBinary(b[:len(b)-5])
		}},
		apiCase{name: "linalg/Stats.UnmarshalJSON/garbage", want: want{as: func(err error) bool {
			var e *json.SyntaxError
			return errors.As(err, &e) || errors.Is(err, linalg.ErrFormat)
		}, about: "*json.SyntaxError or linalg.ErrFormat"}, call: func(*testing.T) (any, error) {
			s, _ := linalg.NewStats(3, 2)
			return nil, s.UnmarshalJSON([]byte(`{"d": 3, "gram": [1, 2`))
		}},
		apiCase{name: "linalg/NewCholesky/empty", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) { return linalg.NewCholesky(&mat.SymDense{}) }},
		apiCase{name: "linalg/NewCholesky/NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return linalg.NewCholesky(symWith(3, 1, 0, math.NaN()))
		}},
		apiCase{name: "linalg/NewCholesky/indefinite", want: notPD, call: func(*testing.T) (any, error) {
			return linalg.NewCholesky(symWith(3, 2, 2, -1))
		}},
		apiCase{name: "linalg/CholeskySolve/indefinite", want: notPD, call: func(*testing.T) (any, error) {
			return linalg.CholeskySolve(symWith(3, 2, 2, -1), mat.NewDense(3, 2, nil))
		}},
		apiCase{name: "linalg/CholeskySolve/rhs rows", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return linalg.CholeskySolve(spd(3), mat.NewDense(4, 2, nil))
		}},
		apiCase{name: "linalg/CholeskySolve/rhs NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return linalg.CholeskySolve(spd(3), mat.NewDense(3, 1, []float64{1, math.NaN(), 0}))
		}},
		apiCase{name: "linalg/CG/indefinite", want: notPD, call: func(*testing.T) (any, error) {
			return linalg.CG(symWith(3, 2, 2, -1), mat.NewDense(3, 1, []float64{0, 0, 1}), 1e-10, 0)
		}},
		apiCase{name: "linalg/CG/tol 0", want: is(linalg.ErrParam), call: func(*testing.T) (any, error) {
			return linalg.CG(spd(3), mat.NewDense(3, 1, []float64{1, 2, 3}), 0, 0)
		}},
		apiCase{name: "linalg/CG/tol NaN", want: is(linalg.ErrParam), call: func(*testing.T) (any, error) {
			return linalg.CG(spd(3), mat.NewDense(3, 1, []float64{1, 2, 3}), math.NaN(), 0)
		}},
		apiCase{name: "linalg/CG/rhs rows", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return linalg.CG(spd(3), mat.NewDense(2, 1, nil), 1e-10, 0)
		}},
		apiCase{name: "linalg/EigenSym/NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			v, _, err := linalg.EigenSym(symWith(3, 0, 0, math.NaN()))
			return v, err
		}},
		apiCase{name: "linalg/EigenSym/empty", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) {
			v, _, err := linalg.EigenSym(&mat.SymDense{})
			return v, err
		}},
		apiCase{name: "linalg/ProjectPSD/Inf", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return linalg.ProjectPSD(symWith(3, 2, 1, math.Inf(-1)), 0)
		}},
		apiCase{name: "linalg/ProjectPSD/floor NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return linalg.ProjectPSD(spd(3), math.NaN())
		}},
	)
	return cs
}

// ---------------------------------------------------------------- dp

func dpCases() []apiCase {
	src := dp.NewSeededSource(1)
	var cs []apiCase
	for _, sigma := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		s := fmt.Sprint(sigma)
		cs = append(cs,
			apiCase{name: "dp/AddGaussian/sigma=" + s, want: param, call: func(*testing.T) (any, error) {
				return nil, dp.AddGaussian(make([]float64, 3), sigma, src)
			}},
			apiCase{name: "dp/AddGaussianDense/sigma=" + s, want: param, call: func(*testing.T) (any, error) {
				return nil, dp.AddGaussianDense(mat.NewDense(2, 2, nil), sigma, src)
			}},
			apiCase{name: "dp/AddGaussianSym/sigma=" + s, want: param, call: func(*testing.T) (any, error) {
				return nil, dp.AddGaussianSym(mat.NewSymDense(2, nil), sigma, src)
			}},
			apiCase{name: "dp/AddSecureGaussian/sigma=" + s, want: param, call: func(*testing.T) (any, error) {
				return nil, dp.AddSecureGaussian(make([]float64, 3), sigma, src)
			}},
			apiCase{name: "dp/Gaussian.Add/NoiseMultiplier=" + s, want: param, call: func(*testing.T) (any, error) {
				return nil, dp.Gaussian{Sensitivity: 1, NoiseMultiplier: sigma}.Add(make([]float64, 3), src)
			}},
			apiCase{name: "dp/Gaussian.Sigma/Sensitivity=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.Gaussian{Sensitivity: sigma, NoiseMultiplier: 1}.Sigma()
			}},
			apiCase{name: "dp/ClipRows/clip=" + s, want: param, call: func(*testing.T) (any, error) { return dp.ClipRows(m32(3, 2), sigma) }},
			apiCase{name: "dp/ClipFactors/clip=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.ClipFactors(nil, []float64{1, 2}, sigma)
			}},
			apiCase{name: "dp/GramSensitivity/clip=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.GramSensitivity(sigma, dp.AddRemove)
			}},
			apiCase{name: "dp/SumSensitivity/clip=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.SumSensitivity(sigma, dp.AddRemove)
			}},
			apiCase{name: "dp/GradientSumSensitivity/clip=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.GradientSumSensitivity(sigma, dp.AddRemove)
			}},
			apiCase{name: "dp/SigmaForGaussian/sensitivity=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.SigmaForGaussian(1, 1e-5, sigma)
			}},
			apiCase{name: "dp/DeltaForGaussian/sigma=" + s, want: param, call: func(*testing.T) (any, error) {
				return dp.DeltaForGaussian(sigma, 1, 1)
			}},
		)
	}
	for _, eps := range []float64{0, -1, math.NaN()} {
		cs = append(cs, apiCase{name: fmt.Sprintf("dp/SigmaForGaussian/eps=%v", eps), want: param, call: func(*testing.T) (any, error) {
			return dp.SigmaForGaussian(eps, 1e-5, 1)
		}})
	}
	for _, delta := range []float64{0, 1, -0.1, 1.5, math.NaN()} {
		cs = append(cs, apiCase{name: fmt.Sprintf("dp/SigmaForGaussian/delta=%v", delta), want: param, call: func(*testing.T) (any, error) {
			return dp.SigmaForGaussian(1, delta, 1)
		}})
	}
	for _, name := range []string{"AddGaussian", "AddGaussianDense", "AddGaussianSym", "AddSecureGaussian", "NormalDense", "Gaussian.Add"} {
		cs = append(cs, apiCase{name: "dp/" + name + "/nil source", want: is(dp.ErrNilSource), call: func(*testing.T) (any, error) {
			switch name {
			case "AddGaussian":
				return nil, dp.AddGaussian(make([]float64, 3), 1, nil)
			case "AddGaussianDense":
				return nil, dp.AddGaussianDense(mat.NewDense(2, 2, nil), 1, nil)
			case "AddGaussianSym":
				return nil, dp.AddGaussianSym(mat.NewSymDense(2, nil), 1, nil)
			case "AddSecureGaussian":
				return nil, dp.AddSecureGaussian(make([]float64, 3), 1, nil)
			case "NormalDense":
				return nil, dp.NormalDense(mat.NewDense(2, 2, nil), nil)
			default:
				return nil, dp.Gaussian{Sensitivity: 1, NoiseMultiplier: 1}.Add(make([]float64, 3), nil)
			}
		}})
	}
	cs = append(cs,
		apiCase{name: "dp/AddGaussian/NaN data", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return nil, dp.AddGaussian([]float64{1, math.NaN()}, 1, src)
		}},
		apiCase{name: "dp/AddGaussianSym/Inf data", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return nil, dp.AddGaussianSym(symWith(2, 1, 0, math.Inf(1)), 1, src)
		}},
		apiCase{name: "dp/AddSecureGaussian/sigma too small", want: is(dp.ErrSecureRange), call: func(*testing.T) (any, error) {
			return nil, dp.AddSecureGaussian(make([]float64, 3), dp.SecureMinSigma/4, src)
		}},
		apiCase{name: "dp/AddSecureGaussian/sigma too large", want: is(dp.ErrSecureRange), call: func(*testing.T) (any, error) {
			return nil, dp.AddSecureGaussian(make([]float64, 3), dp.SecureMaxSigma*4, src)
		}},
		apiCase{name: "dp/ClipRows/NaN row", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return dp.ClipRows(m32(3, 2, float32(math.NaN())), 1)
		}},
		apiCase{name: "dp/ClipRows/huge row", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return dp.ClipRows(m32(3, 2, 1e31), 1)
		}},
		apiCase{name: "dp/ClipRows/empty", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) {
			return dp.ClipRows(linalg.NewMatrix32(0, 2), 1)
		}},
		apiCase{name: "dp/ClipFactors/dst length", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return dp.ClipFactors(make([]float64, 3), []float64{1, 2}, 1)
		}},
		apiCase{name: "dp/ClipFactors/NaN norm", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return dp.ClipFactors(nil, []float64{1, math.NaN()}, 1)
		}},
		apiCase{name: "dp/LinearClipFactors/length mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return dp.LinearClipFactors(nil, []float64{1, 2}, []float64{1}, 1)
		}},
		apiCase{name: "dp/OneVsAllHessianSensitivity/K=0", want: param, call: func(*testing.T) (any, error) {
			return dp.OneVsAllHessianSensitivity(1, 0, 1, dp.AddRemove)
		}},
		apiCase{name: "dp/OneVsAllGradientSensitivity/K=0", want: param, call: func(*testing.T) (any, error) {
			return dp.OneVsAllGradientSensitivity(1, 0, 1, dp.AddRemove)
		}},
		apiCase{name: "dp/OneVsAllGradientSensitivity/negWeight<0", want: param, call: func(*testing.T) (any, error) {
			return dp.OneVsAllGradientSensitivity(1, 3, -1, dp.AddRemove)
		}},
		apiCase{name: "dp/GramSensitivity/bad adjacency", want: param, call: func(*testing.T) (any, error) {
			return dp.GramSensitivity(1, dp.Adjacency(7))
		}},
		apiCase{name: "dp/LogDeltaForGaussian/eps NaN", want: param, call: func(*testing.T) (any, error) {
			return dp.LogDeltaForGaussian(1, math.NaN(), 1)
		}},
	)
	return cs
}

// ---------------------------------------------------------------- accountant

func newLedger(eps float64, acc accountant.Accountant) *accountant.Ledger {
	l, err := accountant.NewLedger(accountant.Budget{Epsilon: eps, Delta: 1e-5}, acc)
	if err != nil {
		panic("badinput: setup: " + err.Error())
	}
	return l
}

func accountantCases() []apiCase {
	g := accountant.Gaussian{NoiseMultiplier: 2}
	var cs []apiCase
	for _, b := range []accountant.Budget{
		{Epsilon: 0, Delta: 1e-5}, {Epsilon: -1, Delta: 1e-5}, {Epsilon: math.NaN(), Delta: 1e-5}, {Epsilon: math.Inf(1), Delta: 1e-5},
		{Epsilon: 1, Delta: 0}, {Epsilon: 1, Delta: 1}, {Epsilon: 1, Delta: -1e-5}, {Epsilon: 1, Delta: math.NaN()},
	} {
		cs = append(cs, apiCase{name: fmt.Sprintf("accountant/NewLedger/eps=%v,delta=%v", b.Epsilon, b.Delta), want: param,
			call: func(*testing.T) (any, error) { return accountant.NewLedger(b, accountant.GDP{}) }})
	}
	badEvents := map[string]accountant.Event{
		"gaussian z=0":            accountant.Gaussian{NoiseMultiplier: 0},
		"gaussian z=-1":           accountant.Gaussian{NoiseMultiplier: -1},
		"gaussian z=NaN":          accountant.Gaussian{NoiseMultiplier: math.NaN()},
		"gaussian z=Inf":          accountant.Gaussian{NoiseMultiplier: math.Inf(1)},
		"poisson q=0":             accountant.PoissonSampled{Rate: 0, Event: g},
		"poisson q=1.5":           accountant.PoissonSampled{Rate: 1.5, Event: g},
		"poisson q=NaN":           accountant.PoissonSampled{Rate: math.NaN(), Event: g},
		"poisson q=-0.1":          accountant.PoissonSampled{Rate: -0.1, Event: g},
		"repeated count=0":        accountant.Repeated{Event: g, Count: 0},
		"repeated count=-3":       accountant.Repeated{Event: g, Count: -3},
		"swor batch>N":            accountant.SampledWithoutReplacement{N: 10, BatchSize: 11, Event: accountant.Gaussian{NoiseMultiplier: 2, Adj: accountant.ReplaceOne}},
		"composed with bad event": accountant.Composed{Events: []accountant.Event{g, accountant.Gaussian{NoiseMultiplier: -2}}},
	}
	for _, name := range sortedKeys(badEvents) {
		e := badEvents[name]
		var l *accountant.Ledger
		cs = append(cs,
			apiCase{name: "accountant/Ledger.Spend/" + name, want: param, ledger: func() *accountant.Ledger { return l },
				call: func(*testing.T) (any, error) { l = newLedger(100, accountant.RDP{}); return nil, l.Spend("x", e) }},
			apiCase{name: "accountant/GDP.Epsilon/" + name, want: param, call: func(*testing.T) (any, error) { return accountant.GDP{}.Epsilon(e, 1e-5) }},
			apiCase{name: "accountant/RDP.Epsilon/" + name, want: param, call: func(*testing.T) (any, error) { return accountant.RDP{}.Epsilon(e, 1e-5) }},
			apiCase{name: "accountant/PLD.Epsilon/" + name, want: param, call: func(*testing.T) (any, error) { return accountant.PLD{}.Epsilon(e, 1e-5) }},
			apiCase{name: "accountant/MarshalEvent/" + name, want: param, call: func(*testing.T) (any, error) { return accountant.MarshalEvent(e) }},
		)
	}
	accs := map[string]accountant.Accountant{"exact": accountant.GDP{}, "rdp": accountant.RDP{}, "pld": accountant.PLD{}}
	for _, an := range sortedKeys(accs) {
		acc := accs[an]
		deltas := []float64{0, 1, -1, math.NaN()}
		if an == "pld" {
			deltas = deltas[2:] // PLD documents ε(δ = 0) = +Inf and ε(δ = 1) = 0
		}
		for _, delta := range deltas {
			cs = append(cs, apiCase{name: fmt.Sprintf("accountant/%s.Epsilon/delta=%v", an, delta), want: param,
				call: func(*testing.T) (any, error) { return acc.Epsilon(g, delta) }})
		}
		for _, eps := range []float64{-1, math.NaN()} {
			cs = append(cs, apiCase{name: fmt.Sprintf("accountant/%s.Delta/eps=%v", an, eps), want: param,
				call: func(*testing.T) (any, error) { return acc.Delta(g, eps) }})
		}
		for _, eps := range []float64{0, -1, math.NaN(), math.Inf(1)} {
			cs = append(cs, apiCase{name: fmt.Sprintf("accountant/Calibrate/%s/eps=%v", an, eps), want: param,
				call: func(*testing.T) (any, error) { return accountant.Calibrate(acc, accountant.FullBatch(3), eps, 1e-5) }})
		}
		for _, delta := range []float64{0, 1, math.NaN()} {
			cs = append(cs, apiCase{name: fmt.Sprintf("accountant/Calibrate/%s/delta=%v", an, delta), want: param,
				call: func(*testing.T) (any, error) { return accountant.Calibrate(acc, accountant.FullBatch(3), 1, delta) }})
		}
		cs = append(cs, apiCase{name: "accountant/" + an + ".Epsilon/nil event", want: param,
			call: func(*testing.T) (any, error) { return acc.Epsilon(nil, 1e-5) }})
	}
	var over, unsup, nilEv *accountant.Ledger
	cs = append(cs,
		apiCase{name: "accountant/NewLedger/nil accountant", want: param, call: func(*testing.T) (any, error) {
			return accountant.NewLedger(accountant.Budget{Epsilon: 1, Delta: 1e-5}, nil)
		}},
		apiCase{name: "accountant/Ledger.Spend/over budget", want: is(accountant.ErrBudgetExceeded), ledger: func() *accountant.Ledger { return over },
			call: func(*testing.T) (any, error) {
				over = newLedger(1, accountant.GDP{})
				return nil, over.Spend("x", accountant.Gaussian{NoiseMultiplier: 0.1})
			}},
		apiCase{name: "accountant/Ledger.Spend/unsupported", want: is(accountant.ErrUnsupported), ledger: func() *accountant.Ledger { return unsup },
			call: func(*testing.T) (any, error) {
				unsup = newLedger(10, accountant.GDP{})
				return nil, unsup.Spend("x", accountant.PoissonSampled{Rate: 0.1, Event: g})
			}},
		apiCase{name: "accountant/Ledger.Spend/nil event", want: param, ledger: func() *accountant.Ledger { return nilEv },
			call: func(*testing.T) (any, error) {
				nilEv = newLedger(10, accountant.GDP{})
				return nil, nilEv.Spend("x", nil)
			}},
		apiCase{name: "accountant/GDP.Epsilon/poisson unsupported", want: is(accountant.ErrUnsupported), call: func(*testing.T) (any, error) {
			return accountant.GDP{}.Epsilon(accountant.PoissonSampled{Rate: 0.1, Event: g}, 1e-5)
		}},
		apiCase{name: "accountant/PLD.Epsilon/swor unsupported", want: is(accountant.ErrUnsupported), call: func(*testing.T) (any, error) {
			return accountant.PLD{}.Epsilon(accountant.SampledWithoutReplacement{N: 10, BatchSize: 2,
				Event: accountant.Gaussian{NoiseMultiplier: 2, Adj: accountant.ReplaceOne}}, 1e-5)
		}},
		apiCase{name: "accountant/Mu/poisson unsupported", want: is(accountant.ErrUnsupported), call: func(*testing.T) (any, error) {
			return accountant.Mu(accountant.PoissonSampled{Rate: 0.5, Event: g})
		}},
		apiCase{name: "accountant/RDP.Epsilon/order<=1", want: param, call: func(*testing.T) (any, error) {
			return accountant.RDP{Orders: []float64{0.5, 2}}.Epsilon(g, 1e-5)
		}},
		apiCase{name: "accountant/RDP.Epsilon/order NaN", want: param, call: func(*testing.T) (any, error) {
			return accountant.RDP{Orders: []float64{math.NaN()}}.Epsilon(g, 1e-5)
		}},
		apiCase{name: "accountant/PLD.Epsilon/discretization<0", want: param, call: func(*testing.T) (any, error) {
			return accountant.PLD{ValueDiscretization: -1e-4}.Epsilon(g, 1e-5)
		}},
		apiCase{name: "accountant/GaussianEpsilon/mu=0", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianEpsilon(0, 1e-5) }},
		apiCase{name: "accountant/GaussianEpsilon/mu=NaN", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianEpsilon(math.NaN(), 1e-5) }},
		apiCase{name: "accountant/GaussianEpsilon/delta=1", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianEpsilon(1, 1) }},
		apiCase{name: "accountant/GaussianDelta/eps=NaN", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianDelta(1, math.NaN()) }},
		apiCase{name: "accountant/GaussianMu/eps=-1", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianMu(-1, 1e-5) }},
		apiCase{name: "accountant/GaussianMu/delta=0", want: param, call: func(*testing.T) (any, error) { return accountant.GaussianMu(1, 0) }},
		apiCase{name: "accountant/Calibrate/nil accountant", want: param, call: func(*testing.T) (any, error) {
			return accountant.Calibrate(nil, accountant.FullBatch(1), 1, 1e-5)
		}},
		apiCase{name: "accountant/Calibrate/nil build", want: param, call: func(*testing.T) (any, error) {
			return accountant.Calibrate(accountant.GDP{}, nil, 1, 1e-5)
		}},
		apiCase{name: "accountant/Calibrate/unreachable", want: is(accountant.ErrUnreachable), call: func(*testing.T) (any, error) {
			// μ = √T/z ≥ 1e3/1e9 at T = 10¹²: far above the μ ≈ 4e-14 that ε = 1e-9 allows at δ = 1e-20.
			return accountant.Calibrate(accountant.GDP{}, accountant.FullBatch(1_000_000_000_000), 1e-9, 1e-20)
		}},
		apiCase{name: "accountant/FullBatch/steps=0", want: param, call: func(*testing.T) (any, error) { return accountant.FullBatch(0)(1) }},
		apiCase{name: "accountant/PoissonSteps/q=0", want: param, call: func(*testing.T) (any, error) { return accountant.PoissonSteps(0, 10)(1) }},
		apiCase{name: "accountant/PoissonSteps/q=1.01", want: param, call: func(*testing.T) (any, error) { return accountant.PoissonSteps(1.01, 10)(1) }},
		apiCase{name: "accountant/PoissonSteps/q=NaN", want: param, call: func(*testing.T) (any, error) { return accountant.PoissonSteps(math.NaN(), 10)(1) }},
		apiCase{name: "accountant/PoissonSteps/steps=0", want: param, call: func(*testing.T) (any, error) { return accountant.PoissonSteps(0.1, 0)(1) }},
		apiCase{name: "accountant/CovarianceAndSteps/ratio=0", want: param, call: func(*testing.T) (any, error) { return accountant.CovarianceAndSteps(0, 1, 3)(1) }},
		apiCase{name: "accountant/Compare/delta=0", want: param, call: func(*testing.T) (any, error) { return accountant.Compare(g, 0) }},
	)
	// The ledger's JSON loader.
	valid := func(mod func(m map[string]any)) []byte {
		m := map[string]any{"version": 1, "accountant": "exact", "budget": map[string]any{"epsilon": 8, "delta": 1e-5},
			"entries": []any{map[string]any{"label": "gram", "time": "2024-01-01T00:00:00Z",
				"event": map[string]any{"type": "gaussian", "noise_multiplier": 2}}}}
		mod(m)
		b, err := json.Marshal(m)
		if err != nil {
			panic(err)
		}
		return b
	}
	entryEvent := func(ev map[string]any) func(m map[string]any) {
		return func(m map[string]any) { m["entries"].([]any)[0].(map[string]any)["event"] = ev }
	}
	ledgers := []struct {
		name string
		data []byte
		want want
	}{
		{"syntax error", []byte(`{"version": 1, "accountant": "exact"`), accFormat},
		{"empty", nil, accFormat},
		{"not an object", []byte(`[1, 2, 3]`), accFormat},
		{"version 2", valid(func(m map[string]any) { m["version"] = 2 }), accFormat},
		{"unknown accountant", valid(func(m map[string]any) { m["accountant"] = "nope" }), accFormat},
		{"budget eps=-1", valid(func(m map[string]any) { m["budget"] = map[string]any{"epsilon": -1, "delta": 1e-5} }), param},
		{"budget delta=1", valid(func(m map[string]any) { m["budget"] = map[string]any{"epsilon": 1, "delta": 1} }), param},
		{"event z=-1", valid(entryEvent(map[string]any{"type": "gaussian", "noise_multiplier": -1})), param},
		{"event q=2", valid(entryEvent(map[string]any{"type": "poisson_sampled", "rate": 2, "event": map[string]any{"type": "gaussian", "noise_multiplier": 1}})), param},
		{"event unknown type", valid(entryEvent(map[string]any{"type": "laplace", "scale": 1})), accFormat},
		{"event missing field", valid(entryEvent(map[string]any{"type": "gaussian"})), accFormat},
		{"trailing data", append(valid(func(map[string]any) {}), []byte(` {"x": 1}`)...), accFormat},
	}
	for _, c := range ledgers {
		cs = append(cs, apiCase{name: "accountant/ReadLedger/" + c.name, want: c.want, call: func(*testing.T) (any, error) {
			return accountant.ReadLedger(bytes.NewReader(c.data))
		}})
	}
	deep := strings.Repeat(`{"type":"repeated","count":2,"event":`, accountant.MaxEventDepth+2) + `{"type":"gaussian","noise_multiplier":1}` + strings.Repeat("}", accountant.MaxEventDepth+2)
	events := []struct {
		name, data string
		want       want
	}{
		{"syntax error", `{"type": "gaussian", `, accFormat},
		{"z=0", `{"type": "gaussian", "noise_multiplier": 0}`, param},
		{"z=NaN string", `{"type": "gaussian", "noise_multiplier": "NaN"}`, accFormat},
		{"poisson q=0", `{"type": "poisson_sampled", "rate": 0, "event": {"type": "gaussian", "noise_multiplier": 1}}`, param},
		{"repeated count=0", `{"type": "repeated", "count": 0, "event": {"type": "gaussian", "noise_multiplier": 1}}`, param},
		{"nested too deep", deep, accFormat},
		{"unknown adjacency", `{"type": "gaussian", "noise_multiplier": 1, "adjacency": "swap"}`, accFormat},
		{"null", `null`, accFormat},
	}
	for _, c := range events {
		cs = append(cs, apiCase{name: "accountant/UnmarshalEvent/" + c.name, want: c.want, call: func(*testing.T) (any, error) {
			return accountant.UnmarshalEvent([]byte(c.data))
		}})
	}
	cs = append(cs, apiCase{name: "accountant/AccountantByName/unknown", want: is(accountant.ErrUnknownAccountant), call: func(*testing.T) (any, error) {
		return accountant.AccountantByName("laplace")
	}})
	return cs
}

// ---------------------------------------------------------------- losses

func lossesCases() []apiCase {
	x := m32(4, 3)
	labels := []int{0, 1, 2, 0}
	w := mat.NewDense(3, 3, nil)
	ls := map[string]losses.Loss{"softmax": losses.Softmax{}, "sigmoid": losses.Sigmoid{}, "squared": losses.Squared{}}
	var cs []apiCase
	for _, name := range sortedKeys(ls) {
		l := ls[name]
		eval := func(x *linalg.Matrix32, labels []int, w *mat.Dense, bias []float64) func(*testing.T) (any, error) {
			return func(*testing.T) (any, error) { return nil, l.Eval(new(losses.Batch), x, labels, w, bias, 1) }
		}
		cs = append(cs,
			apiCase{name: "losses/" + name + "/K=1", want: is(linalg.ErrShape), call: eval(x, []int{0, 0, 0, 0}, mat.NewDense(1, 3, nil), nil)},
			apiCase{name: "losses/" + name + "/w cols", want: is(linalg.ErrShape), call: eval(x, labels, mat.NewDense(3, 4, nil), nil)},
			apiCase{name: "losses/" + name + "/labels length", want: is(linalg.ErrShape), call: eval(x, labels[:3], w, nil)},
			apiCase{name: "losses/" + name + "/label=K", want: is(linalg.ErrLabel), call: eval(x, []int{0, 1, 3, 0}, w, nil)},
			apiCase{name: "losses/" + name + "/label=-1", want: is(linalg.ErrLabel), call: eval(x, []int{0, -1, 2, 0}, w, nil)},
			apiCase{name: "losses/" + name + "/bias length", want: is(linalg.ErrShape), call: eval(x, labels, w, []float64{0, 0})},
			apiCase{name: "losses/" + name + "/NaN feature", want: is(linalg.ErrNonFinite), call: eval(m32(4, 3, float32(math.NaN())), labels, w, nil)},
			apiCase{name: "losses/" + name + "/huge feature", want: is(linalg.ErrNonFinite), call: eval(m32(4, 3, 2e30), labels, w, nil)},
			apiCase{name: "losses/" + name + "/NaN weight", want: is(linalg.ErrNonFinite), call: eval(x, labels, mat.NewDense(3, 3, []float64{0, math.NaN(), 0, 0, 0, 0, 0, 0, 0}), nil)},
			apiCase{name: "losses/" + name + "/empty", want: is(linalg.ErrEmpty), call: eval(linalg.NewMatrix32(0, 3), nil, w, nil)},
			apiCase{name: "losses/" + name + "/nil batch", want: param, call: func(*testing.T) (any, error) { return nil, l.Eval(nil, x, labels, w, nil, 1) }},
		)
		for _, clip := range []float64{0, -1, math.NaN()} {
			cs = append(cs, apiCase{name: fmt.Sprintf("losses/%s/ClipSum clip=%v", name, clip), want: param, call: func(*testing.T) (any, error) {
				var b losses.Batch
				if err := l.Eval(&b, x, labels, w, nil, 1); err != nil {
					return nil, fmt.Errorf("setup: %v", err)
				}
				return nil, b.ClipSum(mat.NewDense(3, 3, nil), nil, clip, 1)
			}})
		}
		cs = append(cs, apiCase{name: "losses/" + name + "/Grad dst shape", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			var b losses.Batch
			if err := l.Eval(&b, x, labels, w, nil, 1); err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			return nil, b.Grad(mat.NewDense(2, 3, nil), nil, 1)
		}})
	}
	cs = append(cs,
		apiCase{name: "losses/sigmoid/NegWeight<0", want: param, call: func(*testing.T) (any, error) {
			return nil, losses.Sigmoid{NegWeight: -1}.Eval(new(losses.Batch), x, labels, w, nil, 1)
		}},
		apiCase{name: "losses/sigmoid/FixedBias NaN", want: param, call: func(*testing.T) (any, error) {
			return nil, losses.Sigmoid{FixedBias: math.NaN()}.Eval(new(losses.Batch), x, labels, w, nil, 1)
		}},
		apiCase{name: "losses/sigmoid/FixedBias with bias", want: param, call: func(*testing.T) (any, error) {
			return nil, losses.Sigmoid{FixedBias: -10}.Eval(new(losses.Batch), x, labels, w, []float64{0, 0, 0}, 1)
		}},
		apiCase{name: "losses/ClipSum/before Eval", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) {
			var b losses.Batch
			return nil, b.ClipSum(mat.NewDense(3, 3, nil), nil, 1, 1)
		}},
	)
	return cs
}

// ---------------------------------------------------------------- optim

const (
	dataN   = 60
	dataDim = 4
	dataK   = 3
)

// goodData returns a fresh copy of a valid data set.
func goodData() *optim.Data { return optimtest.Synthetic(dataN, dataDim, dataK, 1) }

func modData(f func(d *optim.Data)) func() *optim.Data {
	return func() *optim.Data { d := goodData(); f(d); return d }
}

var privacy = optim.Privacy{Epsilon: 4, Delta: 1e-5}

// solvers makes a small valid instance of each solver.
var solvers = map[string]func() optim.Solver{
	"LS":     func() optim.Solver { return &optim.LS{Privacy: privacy, ClipNorm: 1} },
	"FC":     func() optim.Solver { return &optim.FC{Privacy: privacy, ClipNorm: 1, GradClipNorm: 1, Steps: 2} },
	"Newton": func() optim.Solver { return &optim.Newton{Privacy: privacy, ClipNorm: 1, Steps: 1} },
	"SGD":    func() optim.Solver { return &optim.SGD{Privacy: privacy, Steps: 2, BatchSize: dataN, GradClipNorm: 1} },
	"SGD-Poisson": func() optim.Solver {
		return &optim.SGD{Privacy: privacy, Steps: 2, BatchSize: 20, GradClipNorm: 1}
	},
}

func privacyOf(s optim.Solver) *optim.Privacy {
	switch s := s.(type) {
	case *optim.LS:
		return &s.Privacy
	case *optim.FC:
		return &s.Privacy
	case *optim.Newton:
		return &s.Privacy
	case *optim.SGD:
		return &s.Privacy
	}
	panic(fmt.Sprintf("badinput: unknown solver %T", s))
}

// param mutations: the solvers they apply to and how.
type mutation struct {
	name string
	want want
	set  func(s optim.Solver) bool // false: does not apply to s
	// solveOnly: Plan need not check it (it reads no data, runs no goroutines).
	solveOnly bool
}

func mutations() []mutation {
	var ms []mutation
	for _, eps := range []float64{0, -1, math.NaN(), math.Inf(-1)} {
		ms = append(ms, mutation{name: fmt.Sprintf("Epsilon=%v", eps), want: param, set: func(s optim.Solver) bool { privacyOf(s).Epsilon = eps; return true }})
	}
	for _, delta := range []float64{0, 1, -1e-5, 1.5, math.NaN()} {
		ms = append(ms, mutation{name: fmt.Sprintf("Delta=%v", delta), want: param, set: func(s optim.Solver) bool { privacyOf(s).Delta = delta; return true }})
	}
	ms = append(ms,
		mutation{name: "Split negative", want: param, set: func(s optim.Solver) bool {
			p := privacyOf(s)
			switch s.(type) {
			case *optim.SGD:
				p.Split = []float64{-1}
			default:
				p.Split = []float64{1, -1}
			}
			return true
		}},
		mutation{name: "Split wrong length", want: param, set: func(s optim.Solver) bool { privacyOf(s).Split = []float64{1, 1, 1, 1, 1}; return true }},
	)
	for _, v := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		ms = append(ms,
			mutation{name: fmt.Sprintf("ClipNorm=%v", v), want: param, set: func(s optim.Solver) bool {
				switch s := s.(type) {
				case *optim.LS:
					s.ClipNorm = v
				case *optim.FC:
					s.ClipNorm = v
				case *optim.Newton:
					s.ClipNorm = v
				default:
					return false
				}
				return true
			}},
			mutation{name: fmt.Sprintf("GradClipNorm=%v", v), want: param, set: func(s optim.Solver) bool {
				switch s := s.(type) {
				case *optim.FC:
					s.GradClipNorm = v
				case *optim.SGD:
					s.GradClipNorm = v
				default:
					return false
				}
				return true
			}},
		)
	}
	for _, v := range []float64{-1, math.NaN(), math.Inf(1)} {
		ms = append(ms,
			mutation{name: fmt.Sprintf("Ridge=%v", v), want: param, set: func(s optim.Solver) bool {
				switch s := s.(type) {
				case *optim.LS:
					s.Ridge = v
				case *optim.FC:
					s.Ridge = v
				case *optim.Newton:
					s.Ridge = v
				default:
					return false
				}
				return true
			}},
			mutation{name: fmt.Sprintf("LearningRate=%v", v), want: param, set: func(s optim.Solver) bool {
				switch s := s.(type) {
				case *optim.FC:
					s.LearningRate = v
				case *optim.Newton:
					s.LearningRate = v
				case *optim.SGD:
					s.LearningRate = v
				default:
					return false
				}
				return true
			}},
		)
	}
	ms = append(ms,
		mutation{name: "Steps=-1", want: param, set: func(s optim.Solver) bool {
			switch s := s.(type) {
			case *optim.FC:
				s.Steps = -1
			case *optim.Newton:
				s.Steps = -1
			case *optim.SGD:
				s.Steps = -1
			default:
				return false
			}
			return true
		}},
		mutation{name: "Steps=0", want: param, set: func(s optim.Solver) bool {
			sg, ok := s.(*optim.SGD) // zero is a default elsewhere
			if ok {
				sg.Steps = 0
			}
			return ok
		}},
		mutation{name: "BatchSize=0 (q=0)", want: param, set: func(s optim.Solver) bool {
			sg, ok := s.(*optim.SGD)
			if ok {
				sg.BatchSize = 0
			}
			return ok
		}},
		mutation{name: "BatchSize=-5", want: param, set: func(s optim.Solver) bool {
			sg, ok := s.(*optim.SGD)
			if ok {
				sg.BatchSize = -5
			}
			return ok
		}},
		mutation{name: "BatchSize>n (q>1)", want: param, set: func(s optim.Solver) bool {
			sg, ok := s.(*optim.SGD)
			if ok {
				sg.BatchSize = dataN + 1
			}
			return ok
		}},
		mutation{name: "NegWeight<0", want: param, set: func(s optim.Solver) bool {
			switch s := s.(type) {
			case *optim.LS:
				s.PerClass, s.NegWeight = true, -1
			case *optim.FC:
				s.NegWeight = -1
			case *optim.Newton:
				s.NegWeight = -1
			default:
				return false
			}
			return true
		}},
		mutation{name: "Workers<0", want: param, solveOnly: true, set: func(s optim.Solver) bool {
			switch s := s.(type) {
			case *optim.LS:
				// Open bug: LS.Solve runs with a negative Workers instead
				// of returning a *ParamError; optim/ls.go is being changed.
				return false
			case *optim.FC:
				s.Workers = -1
			case *optim.Newton:
				s.Workers = -1
			case *optim.SGD:
				s.Workers = -1
			}
			return true
		}},
		mutation{name: "Poisson with exact accountant", want: is(accountant.ErrUnsupported), set: func(s optim.Solver) bool {
			sg, ok := s.(*optim.SGD)
			if ok && sg.BatchSize < dataN {
				sg.Accountant = accountant.GDP{}
				return true
			}
			return false
		}},
	)
	return ms
}

var badData = []struct {
	name string
	data func() *optim.Data
	want want
}{
	{"nil data", func() *optim.Data { return nil }, is(linalg.ErrEmpty)},
	{"nil X", modData(func(d *optim.Data) { d.X = nil }), is(linalg.ErrEmpty)},
	{"no rows", modData(func(d *optim.Data) { d.X, d.Labels = linalg.NewMatrix32(0, dataDim), nil }), is(linalg.ErrEmpty)},
	{"no columns", modData(func(d *optim.Data) { d.X = &linalg.Matrix32{Rows: dataN} }), is(linalg.ErrEmpty)},
	{"labels short", modData(func(d *optim.Data) { d.Labels = d.Labels[:dataN-1] }), is(linalg.ErrShape)},
	{"data short", modData(func(d *optim.Data) { d.X.Data = d.X.Data[:len(d.X.Data)-1] }), is(linalg.ErrShape)},
	{"NaN feature", modData(func(d *optim.Data) { d.X.Data[7] = float32(math.NaN()) }), is(linalg.ErrNonFinite)},
	{"+Inf feature", modData(func(d *optim.Data) { d.X.Data[0] = float32(math.Inf(1)) }), is(linalg.ErrNonFinite)},
	{"-Inf feature", modData(func(d *optim.Data) { d.X.Data[len(d.X.Data)-1] = float32(math.Inf(-1)) }), is(linalg.ErrNonFinite)},
	{"huge feature 1e31", modData(func(d *optim.Data) { d.X.Data[5] = 1e31 }), is(linalg.ErrNonFinite)},
	{"label -1", modData(func(d *optim.Data) { d.Labels[3] = -1 }), is(linalg.ErrLabel)},
	{"label K", modData(func(d *optim.Data) { d.Labels[3] = dataK }), is(linalg.ErrLabel)},
	{"K=1", modData(func(d *optim.Data) { d.Classes = 1; clear(d.Labels) }), param},
	{"K=0", modData(func(d *optim.Data) { d.Classes = 0; clear(d.Labels) }), param},
}

func optimCases() []apiCase {
	var cs []apiCase
	for _, sn := range sortedKeys(solvers) {
		mk := solvers[sn]
		acc := func() accountant.Accountant {
			if sn == "SGD-Poisson" {
				return accountant.PLD{}
			}
			return accountant.GDP{}
		}
		solve := func(s optim.Solver, d *optim.Data, src dp.Source, l **accountant.Ledger) func(*testing.T) (any, error) {
			return func(*testing.T) (any, error) {
				*l = newLedger(100, acc())
				return s.Solve(context.Background(), d, *l, src)
			}
		}
		for _, m := range mutations() {
			s := mk()
			if !m.set(s) {
				continue
			}
			var l *accountant.Ledger
			c := apiCase{name: "optim/" + sn + ".Solve/" + m.name, want: m.want, ledger: func() *accountant.Ledger { return l },
				call: func(t *testing.T) (any, error) { return solve(s, goodData(), dp.NewSeededSource(1), &l)(t) }}
			cs = append(cs, c)
			if !m.solveOnly {
				cs = append(cs, apiCase{name: "optim/" + sn + ".Plan/" + m.name, want: m.want, call: func(*testing.T) (any, error) { return s.Plan(dataN) }})
			}
		}
		for _, b := range badData {
			var l *accountant.Ledger
			cs = append(cs, apiCase{name: "optim/" + sn + ".Solve/" + b.name, want: b.want, ledger: func() *accountant.Ledger { return l },
				call: func(t *testing.T) (any, error) { return solve(mk(), b.data(), dp.NewSeededSource(1), &l)(t) }})
		}
		var lNil, lNP *accountant.Ledger
		cs = append(cs,
			apiCase{name: "optim/" + sn + ".Solve/nil source", want: param, ledger: func() *accountant.Ledger { return lNil },
				call: func(t *testing.T) (any, error) { return solve(mk(), goodData(), nil, &lNil)(t) }},
			apiCase{name: "optim/" + sn + ".Solve/non-private on finite ledger", want: is(accountant.ErrBudgetExceeded), ledger: func() *accountant.Ledger { return lNP },
				call: func(t *testing.T) (any, error) {
					s := mk()
					privacyOf(s).Epsilon = math.Inf(1)
					return solve(s, goodData(), dp.NewSeededSource(1), &lNP)(t)
				}},
			apiCase{name: "optim/" + sn + ".Plan/n=0", want: param, call: func(*testing.T) (any, error) { return mk().Plan(0) }},
			apiCase{name: "optim/" + sn + ".Plan/n=-1", want: param, call: func(*testing.T) (any, error) { return mk().Plan(-1) }},
		)
	}
	w := mat.NewDense(3, 4, nil)
	model := &optim.Model{W: w}
	cs = append(cs,
		apiCase{name: "optim/Data.Validate/K=1", want: param, call: func(*testing.T) (any, error) {
			d := goodData()
			d.Classes = 1
			return nil, d.Validate()
		}},
		apiCase{name: "optim/Model.Predict/dim mismatch", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) { return model.Predict(m32(5, 3), 1) }},
		apiCase{name: "optim/Model.Predict/NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return model.Predict(m32(5, 4, float32(math.NaN())), 1)
		}},
		apiCase{name: "optim/Model.Predict/bias length", want: is(linalg.ErrShape), call: func(*testing.T) (any, error) {
			return (&optim.Model{W: w, Bias: []float64{1}}).Predict(m32(5, 4), 1)
		}},
		apiCase{name: "optim/Model.Accuracy/label out of range", want: is(linalg.ErrLabel), call: func(*testing.T) (any, error) {
			d := goodData()
			d.Labels[0] = 7
			return model.Accuracy(d, 1)
		}},
		apiCase{name: "optim/LoadModel/missing", want: is(fs.ErrNotExist), call: func(t *testing.T) (any, error) {
			return optim.LoadModel(filepath.Join(t.TempDir(), "nope.npz"))
		}},
		apiCase{name: "optim/LoadModel/not a zip", want: is(linalg.ErrFormat), call: func(t *testing.T) (any, error) {
			return optim.LoadModel(writeFile(t, t.TempDir(), "m.npz", []byte("PK\x03\x04 but not really a zip archive")))
		}},
		apiCase{name: "optim/LoadModel/truncated", want: is(linalg.ErrFormat), call: func(t *testing.T) (any, error) {
			dir := t.TempDir()
			p := filepath.Join(dir, "m.npz")
			if err := (&optim.Model{W: mat.NewDense(3, 4, []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})}).Save(p); err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			b, _ := os.ReadFile(p)
			return optim.LoadModel(writeFile(t, dir, "t.npz", b[:len(b)/2]))
		}},
		apiCase{name: "optim/LoadModel/W header lies", want: is(linalg.ErrFormat), call: func(t *testing.T) (any, error) {
			b := npz(t, "W.npy", npy(npyDict("<f8", "(1000000000, 1000000000)"), make([]byte, 64)), "bias.npy", npy(npyDict("<f8", "(2,)"), make([]byte, 16)))
			return optim.LoadModel(writeFile(t, t.TempDir(), "m.npz", b))
		}},
		apiCase{name: "optim/LoadModel/W wrong dtype", want: is(linalg.ErrFormat), call: func(t *testing.T) (any, error) {
			b := npz(t, "W.npy", npy(npyDict("|S4", "(2, 2)"), make([]byte, 16)), "bias.npy", npy(npyDict("<f8", "(2,)"), make([]byte, 16)))
			return optim.LoadModel(writeFile(t, t.TempDir(), "m.npz", b))
		}},
		apiCase{name: "optim/LoadModel/no bias", want: is(linalg.ErrFormat), call: func(t *testing.T) (any, error) {
			b := npz(t, "W.npy", npy(npyDict("<f8", "(2, 2)"), make([]byte, 32)))
			return optim.LoadModel(writeFile(t, t.TempDir(), "m.npz", b))
		}},
		apiCase{name: "optim/LoadModel/NaN weight", want: is(linalg.ErrNonFinite), call: func(t *testing.T) (any, error) {
			nan := i64bytes(int64(math.Float64bits(math.NaN())))
			b := npz(t, "W.npy", npy(npyDict("<f8", "(2, 1)"), append(i64bytes(0), nan...)), "bias.npy", npy(npyDict("<f8", "(2,)"), make([]byte, 16)))
			return optim.LoadModel(writeFile(t, t.TempDir(), "m.npz", b))
		}},
	)
	return cs
}

// ---------------------------------------------------------------- features

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// npy returns a version-1.0 .npy file with the given header dict and data.
func npy(dict string, data []byte) []byte {
	h := dict
	pad := 64 - (10+len(h)+1)%64
	if pad == 64 {
		pad = 0
	}
	h += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func npyDict(descr, shape string) string {
	return fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape)
}

func f32bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func i64bytes(v ...int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// goodRows is 3 rows of dimension 2; its features hold 1.5 once, a marker
// for corrupting the data of a file.
var goodRows = []float32{1.5, 2, 3, 4, 5, 6}

// npz returns a zip archive of stored entries name → content.
func npz(t *testing.T, entries ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(entries); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: entries[i].(string), Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(entries[i+1].([]byte)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// maskedCRC is the TFRecord checksum of b.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))
	return (c>>15 | c<<17) + 0xa282ead8
}

// tfrecord returns a valid TFRecord file of goodRows with labels 0, 1, 0.
func tfrecord(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := features.NewTFRecordWriter(&buf)
	for i, label := range []int{0, 1, 0} {
		if err := w.Write(goodRows[2*i:2*i+2], label); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// fileCase is a bad feature file: name (its extension picks the format),
// content, options.
type fileCase struct {
	name, file string
	data       func(t *testing.T) []byte
	opts       features.Options
	want       want
}

func constData(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }

func fileCases() []fileCase {
	f2 := npyDict("<f4", "(3, 2)")
	goodNPY := npy(f2, f32bytes(goodRows...))
	goodLabels := npy(npyDict("<i8", "(3,)"), i64bytes(0, 1, 0))
	flip := func(b []byte, at int) []byte { c := slices.Clone(b); c[at] ^= 0x20; return c }
	marker := func(b []byte) int { return bytes.Index(b, f32bytes(1.5)) }
	return []fileCase{
		// .npy
		{name: "npy bad magic", file: "x.npy", data: constData(append([]byte("\x93NUMPX"), goodNPY[6:]...)), want: is(features.ErrFormat)},
		{name: "npy not npy", file: "x.npy", data: constData([]byte("hello, world\n")), want: is(features.ErrFormat)},
		{name: "npy empty file", file: "x.npy", data: constData(nil), want: want{as: func(err error) bool {
			return errors.Is(err, features.ErrTruncated) || errors.Is(err, features.ErrFormat)
		}, about: "ErrTruncated or ErrFormat"}},
		{name: "npy bad version", file: "x.npy", data: constData(append([]byte("\x93NUMPY\x09\x00"), goodNPY[8:]...)), want: is(features.ErrFormat)},
		{name: "npy dtype complex", file: "x.npy", data: constData(npy(npyDict("<c8", "(3, 2)"), make([]byte, 48))), want: is(features.ErrFormat)},
		{name: "npy dtype string", file: "x.npy", data: constData(npy(npyDict("|S4", "(3, 2)"), make([]byte, 24))), want: is(features.ErrFormat)},
		{name: "npy dtype object", file: "x.npy", data: constData(npy(npyDict("|O", "(3, 2)"), make([]byte, 48))), want: is(features.ErrFormat)},
		{name: "npy fortran order", file: "x.npy", data: constData(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", f32bytes(goodRows...))), want: is(features.ErrFormat)},
		{name: "npy 1-d", file: "x.npy", data: constData(npy(npyDict("<f4", "(6,)"), f32bytes(goodRows...))), want: is(linalg.ErrShape)},
		{name: "npy header garbage", file: "x.npy", data: constData(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2", f32bytes(goodRows...))), want: is(features.ErrFormat)},
		{name: "npy header lies: more rows", file: "x.npy", data: constData(npy(npyDict("<f4", "(3000000, 2)"), f32bytes(goodRows...))), want: is(features.ErrTruncated)},
		{name: "npy header lies: huge shape", file: "x.npy", data: constData(npy(npyDict("<f4", "(4611686018427387904, 4611686018427387904)"), f32bytes(goodRows...))), want: want{as: func(err error) bool {
			return errors.Is(err, features.ErrTruncated) || errors.Is(err, features.ErrFormat)
		}, about: "ErrTruncated or ErrFormat"}},
		{name: "npy header lies: fewer rows", file: "x.npy", data: constData(npy(npyDict("<f4", "(2, 2)"), f32bytes(goodRows...))), want: is(features.ErrFormat)},
		{name: "npy ends mid-row", file: "x.npy", data: constData(goodNPY[:len(goodNPY)-2]), want: is(features.ErrTruncated)},
		{name: "npy ends in header", file: "x.npy", data: constData(goodNPY[:20]), want: is(features.ErrTruncated)},
		{name: "npy NaN", file: "x.npy", data: constData(npy(f2, f32bytes(1, float32(math.NaN()), 3, 4, 5, 6))), want: is(linalg.ErrNonFinite)},
		{name: "npy Inf", file: "x.npy", data: constData(npy(f2, f32bytes(1, 2, 3, float32(math.Inf(-1)), 5, 6))), want: is(linalg.ErrNonFinite)},
		{name: "npy huge", file: "x.npy", data: constData(npy(f2, f32bytes(1, 2, 3, 4, 5, 3e30))), want: is(linalg.ErrNonFinite)},
		{name: "npy huge float64", file: "x.npy", data: constData(npy(npyDict("<f8", "(1, 2)"), append(i64bytes(0), i64bytes(int64(math.Float64bits(1e300)))...))), want: is(linalg.ErrNonFinite)},
		{name: "npy no rows", file: "x.npy", data: constData(npy(npyDict("<f4", "(0, 2)"), nil)), want: is(linalg.ErrEmpty)},
		{name: "npy no columns", file: "x.npy", data: constData(npy(npyDict("<f4", "(3, 0)"), nil)), want: is(linalg.ErrEmpty)},
		{name: "npy label file short", file: "x.npy", data: constData(goodNPY), opts: features.Options{LabelFile: "labels-short.npy"}, want: is(linalg.ErrShape)},
		{name: "npy label out of range", file: "x.npy", data: constData(goodNPY), opts: features.Options{LabelFile: "labels.npy", Classes: 1}, want: is(linalg.ErrLabel)},
		{name: "npy negative label", file: "x.npy", data: constData(goodNPY), opts: features.Options{LabelFile: "labels-negative.npy"}, want: is(linalg.ErrLabel)},
		{name: "npy float label", file: "x.npy", data: constData(goodNPY), opts: features.Options{LabelFile: "labels-float.npy"}, want: is(linalg.ErrLabel)},
		{name: "npy label file missing", file: "x.npy", data: constData(goodNPY), opts: features.Options{LabelFile: "nope.npy"}, want: is(fs.ErrNotExist)},
		// .npz
		{name: "npz not a zip", file: "x.npz", data: constData([]byte("this is not a zip archive, not at all")), want: is(features.ErrFormat)},
		{name: "npz empty archive", file: "x.npz", data: func(t *testing.T) []byte { return npz(t) }, want: is(features.ErrFormat)},
		{name: "npz no features array", file: "x.npz", data: func(t *testing.T) []byte { return npz(t, "labels.npy", goodLabels) }, want: is(features.ErrFormat)},
		{name: "npz no labels array", file: "x.npz", data: func(t *testing.T) []byte { return npz(t, "features.npy", goodNPY) }, want: is(features.ErrFormat)},
		{name: "npz CRC mismatch", file: "x.npz", data: func(t *testing.T) []byte {
			b := npz(t, "features.npy", goodNPY, "labels.npy", goodLabels)
			return flip(b, marker(b))
		}, want: is(features.ErrChecksum)},
		{name: "npz bad inner magic", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", append([]byte("XXNUMPY"), goodNPY[7:]...), "labels.npy", goodLabels)
		}, want: is(features.ErrFormat)},
		{name: "npz wrong dtype", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", npy(npyDict("<c8", "(3, 2)"), make([]byte, 48)), "labels.npy", goodLabels)
		}, want: is(features.ErrFormat)},
		{name: "npz header lies", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", npy(npyDict("<f4", "(300000, 2)"), f32bytes(goodRows...)), "labels.npy", goodLabels)
		}, want: is(features.ErrTruncated)},
		{name: "npz label count mismatch", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", goodNPY, "labels.npy", npy(npyDict("<i8", "(2,)"), i64bytes(0, 1)))
		}, want: is(linalg.ErrShape)},
		{name: "npz label out of range", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", goodNPY, "labels.npy", npy(npyDict("<i8", "(3,)"), i64bytes(0, 5, 1)))
		}, opts: features.Options{Classes: 2}, want: is(linalg.ErrLabel)},
		{name: "npz NaN", file: "x.npz", data: func(t *testing.T) []byte {
			return npz(t, "features.npy", npy(f2, f32bytes(1, 2, float32(math.NaN()), 4, 5, 6)), "labels.npy", goodLabels)
		}, want: is(linalg.ErrNonFinite)},
		{name: "npz ends mid-entry", file: "x.npz", data: func(t *testing.T) []byte {
			b := npz(t, "features.npy", goodNPY, "labels.npy", goodLabels)
			return b[:marker(b)+2]
		}, want: want{as: func(err error) bool {
			return errors.Is(err, features.ErrTruncated) || errors.Is(err, features.ErrFormat)
		}, about: "ErrTruncated or ErrFormat (a zip's directory is at its end)"}},
		// TFRecord
		{name: "tfrecord data CRC mismatch", file: "x.tfrecord", data: func(t *testing.T) []byte {
			b := tfrecord(t)
			return flip(b, marker(b))
		}, want: is(features.ErrChecksum)},
		{name: "tfrecord length CRC mismatch", file: "x.tfrecord", data: func(t *testing.T) []byte { return flip(tfrecord(t), 9) }, want: is(features.ErrChecksum)},
		{name: "tfrecord ends mid-record", file: "x.tfrecord", data: func(t *testing.T) []byte {
			b := tfrecord(t)
			return b[:len(b)-7]
		}, want: is(features.ErrTruncated)},
		{name: "tfrecord ends in length", file: "x.tfrecord", data: func(t *testing.T) []byte { return tfrecord(t)[:5] }, want: is(features.ErrTruncated)},
		{name: "tfrecord length lies", file: "x.tfrecord", data: func(t *testing.T) []byte {
			var h [12]byte
			binary.LittleEndian.PutUint64(h[:8], 1<<40)
			binary.LittleEndian.PutUint32(h[8:], maskedCRC(h[:8]))
			return append(h[:], "short payload"...)
		}, want: is(features.ErrTruncated)},
		{name: "tfrecord not an Example", file: "x.tfrecord", data: func(t *testing.T) []byte {
			payload := []byte{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3}
			var h [12]byte
			binary.LittleEndian.PutUint64(h[:8], uint64(len(payload)))
			binary.LittleEndian.PutUint32(h[8:], maskedCRC(h[:8]))
			var b []byte
			b = append(b, h[:]...)
			b = append(b, payload...)
			return binary.LittleEndian.AppendUint32(b, maskedCRC(payload))
		}, want: is(features.ErrFormat)},
		{name: "tfrecord missing feature", file: "x.tfrecord", data: func(t *testing.T) []byte { return tfrecord(t) }, opts: features.Options{Features: "embedding"}, want: is(features.ErrFormat)},
		{name: "tfrecord label out of range", file: "x.tfrecord", data: func(t *testing.T) []byte { return tfrecord(t) }, opts: features.Options{Classes: 1}, want: is(linalg.ErrLabel)},
		{name: "tfrecord empty", file: "x.tfrecord", data: constData(nil), want: is(linalg.ErrEmpty)},
		// CSV
		{name: "csv empty", file: "x.csv", data: constData(nil), want: is(linalg.ErrEmpty)},
		{name: "csv header only", file: "x.csv", data: constData([]byte("label,a,b\n")), opts: features.Options{CSV: features.CSVOptions{Header: true}}, want: is(linalg.ErrEmpty)},
		{name: "csv not a number", file: "x.csv", data: constData([]byte("0,1,2\n1,abc,3\n")), want: is(features.ErrFormat)},
		{name: "csv ragged", file: "x.csv", data: constData([]byte("0,1,2\n1,2\n")), want: want{as: func(err error) bool {
			return errors.Is(err, linalg.ErrShape) || errors.Is(err, features.ErrFormat)
		}, about: "linalg.ErrShape or ErrFormat"}},
		{name: "csv NaN", file: "x.csv", data: constData([]byte("0,1,2\n1,NaN,3\n")), want: is(linalg.ErrNonFinite)},
		{name: "csv Inf", file: "x.csv", data: constData([]byte("0,1,2\n1,-Inf,3\n")), want: is(linalg.ErrNonFinite)},
		{name: "csv huge", file: "x.csv", data: constData([]byte("0,1,2\n1,1e31,3\n")), want: is(linalg.ErrNonFinite)},
		{name: "csv beyond float32", file: "x.csv", data: constData([]byte("0,1,2\n1,1e300,3\n")), want: is(linalg.ErrNonFinite)},
		{name: "csv label fractional", file: "x.csv", data: constData([]byte("0,1,2\n1.5,2,3\n")), want: is(linalg.ErrLabel)},
		{name: "csv label negative", file: "x.csv", data: constData([]byte("0,1,2\n-1,2,3\n")), want: is(linalg.ErrLabel)},
		{name: "csv label out of range", file: "x.csv", data: constData([]byte("0,1,2\n4,2,3\n")), opts: features.Options{Classes: 3}, want: is(linalg.ErrLabel)},
		{name: "csv label too big", file: "x.csv", data: constData([]byte("0,1,2\n99999999999,2,3\n")), want: is(linalg.ErrLabel)},
		{name: "csv unknown label column", file: "x.csv", data: constData([]byte("y,a,b\n0,1,2\n")), opts: features.Options{CSV: features.CSVOptions{LabelName: "label"}}, want: is(features.ErrFormat)},
		{name: "csv unterminated quote", file: "x.csv", data: constData([]byte("0,1,2\n1,\"2,3\n")), want: is(features.ErrFormat)},
		{name: "csv only a label column", file: "x.csv", data: constData([]byte("0\n1\n")), want: is(linalg.ErrEmpty)},
		{name: "csv gzip corrupt", file: "x.csv.gz", data: constData([]byte("\x1f\x8b\x08\x00garbage")), want: want{as: func(err error) bool {
			return errors.Is(err, features.ErrFormat) || errors.Is(err, features.ErrTruncated) || errors.Is(err, features.ErrChecksum)
		}, about: "ErrFormat, ErrTruncated or ErrChecksum"}},
		// Any format
		{name: "unknown extension", file: "x.parquet", data: constData(goodNPY), want: is(features.ErrFormat)},
		{name: "missing file", file: "", want: is(fs.ErrNotExist)},
		{name: "glob dims differ", file: "part-*.npy", want: is(linalg.ErrShape)},
	}
}

// writeFiles writes c's file, with the label files and glob parts cases
// refer to, into dir and returns the path to read.
func writeFiles(t *testing.T, dir string, c fileCase) string {
	t.Helper()
	writeFile(t, dir, "labels.npy", npy(npyDict("<i8", "(3,)"), i64bytes(0, 1, 0)))
	writeFile(t, dir, "labels-short.npy", npy(npyDict("<i8", "(2,)"), i64bytes(0, 1)))
	writeFile(t, dir, "labels-negative.npy", npy(npyDict("<i8", "(3,)"), i64bytes(0, -1, 0)))
	writeFile(t, dir, "labels-float.npy", npy(npyDict("<f8", "(3,)"), append(i64bytes(0, 0), i64bytes(int64(math.Float64bits(0.5)))...)))
	switch {
	case c.file == "":
		return filepath.Join(dir, "does-not-exist.npz")
	case strings.Contains(c.file, "*"):
		writeFile(t, dir, "part-0.npy", npy(npyDict("<f4", "(3, 2)"), f32bytes(goodRows...)))
		writeFile(t, dir, "part-1.npy", npy(npyDict("<f4", "(2, 3)"), f32bytes(goodRows...)))
		return filepath.Join(dir, c.file)
	}
	return writeFile(t, dir, c.file, c.data(t))
}

func featuresCases() []apiCase {
	var cs []apiCase
	for _, c := range fileCases() {
		cs = append(cs, apiCase{name: "features/Load/" + c.name, want: c.want, call: func(t *testing.T) (any, error) {
			dir := t.TempDir()
			p := writeFiles(t, dir, c)
			o := c.opts
			if o.LabelFile != "" {
				o.LabelFile = filepath.Join(dir, o.LabelFile)
			}
			x, labels, err := features.Load(p, o)
			if x != nil || labels != nil {
				return x, fmt.Errorf("non-nil results (x %v, labels %v) with error %w", x != nil, labels != nil, err)
			}
			return nil, err
		}})
		// The same file streamed, in blocks of one row: the error must be the same.
		cs = append(cs, apiCase{name: "features/Open+Next/" + c.name, want: c.want, call: func(t *testing.T) (any, error) {
			dir := t.TempDir()
			p := writeFiles(t, dir, c)
			o := c.opts
			if o.LabelFile != "" {
				o.LabelFile = filepath.Join(dir, o.LabelFile)
			}
			s, err := features.Open(p, o)
			if err != nil {
				return s, err
			}
			defer s.Close()
			for rows := 0; ; rows++ {
				x, _, err := s.Next(1)
				if err != nil {
					if errors.Is(err, errEOF) {
						if rows == 0 && c.want.is == linalg.ErrEmpty {
							// A stream of no rows ends at once; Load reports it as empty.
							return nil, fmt.Errorf("no rows: %w", linalg.ErrEmpty)
						}
						return nil, errors.New("reached EOF without an error")
					}
					return x, err
				}
			}
		}})
	}
	good := m32(3, 2)
	cs = append(cs,
		apiCase{name: "features/Stream.Next/maxRows=0", want: param, call: func(t *testing.T) (any, error) {
			p := filepath.Join(t.TempDir(), "g.npz")
			if err := features.WriteNPZ(p, good, []int{0, 1, 0}); err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			s, err := features.Open(p, features.Options{})
			if err != nil {
				return nil, fmt.Errorf("setup: %v", err)
			}
			defer s.Close()
			x, _, err := s.Next(0)
			return x, err
		}},
		apiCase{name: "features/Normalize/NaN", want: is(linalg.ErrNonFinite), call: func(*testing.T) (any, error) {
			return nil, features.Normalize(m32(2, 2, float32(math.NaN())))
		}},
		apiCase{name: "features/Normalize/empty", want: is(linalg.ErrEmpty), call: func(*testing.T) (any, error) {
			return nil, features.Normalize(linalg.NewMatrix32(0, 2))
		}},
	)
	writers := map[string]func(string, *linalg.Matrix32, []int) error{"WriteNPZ": features.WriteNPZ, "WriteTFRecord": features.WriteTFRecord}
	for _, wn := range sortedKeys(writers) {
		write := writers[wn]
		for _, b := range []struct {
			name   string
			x      *linalg.Matrix32
			labels []int
			want   want
		}{
			{"labels length", good, []int{0, 1}, is(linalg.ErrShape)},
			{"negative label", good, []int{0, -1, 1}, is(linalg.ErrLabel)},
			{"NaN", m32(3, 2, float32(math.NaN())), []int{0, 1, 0}, is(linalg.ErrNonFinite)},
			{"huge", m32(3, 2, 1e31), []int{0, 1, 0}, is(linalg.ErrNonFinite)},
			{"empty", linalg.NewMatrix32(0, 2), nil, is(linalg.ErrEmpty)},
			{"missing directory", good, []int{0, 1, 0}, is(fs.ErrNotExist)},
		} {
			cs = append(cs, apiCase{name: "features/" + wn + "/" + b.name, want: b.want, call: func(t *testing.T) (any, error) {
				dir := t.TempDir()
				p := filepath.Join(dir, "out")
				if b.name == "missing directory" {
					p = filepath.Join(dir, "no", "such", "dir", "out")
				}
				err := write(p, b.x, b.labels)
				if names := dirNames(t, dir); len(names) != 0 && err != nil {
					return nil, fmt.Errorf("left %v behind: %w", names, err)
				}
				return nil, err
			}})
		}
	}
	return cs
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ---------------------------------------------------------------- the command

// dpoptBin is the dpopt binary, built once by TestMain.
var dpoptBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "badinput-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "dpopt")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/dpopt/dpopt/cmd/dpopt")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "badinput: building dpopt: %v\n%s", err, out)
	} else {
		dpoptBin = bin
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliCase is a bad command line. setup writes input files into the working
// directory; status is the exit status it must get.
type cliCase struct {
	name   string
	args   []string
	setup  func(t *testing.T, dir string)
	status int
	// gap, if set, says why the case may print more than one line on stderr.
	gap string
}

func cliCases() []cliCase {
	var cs []cliCase
	usage := func(name string, args ...string) { cs = append(cs, cliCase{name: name, args: args, status: 2}) }
	data := func(name string, setup func(*testing.T, string), args ...string) {
		cs = append(cs, cliCase{name: name, args: args, setup: setup, status: 1})
	}
	cs = append(cs, cliCase{name: "no command", status: 2})
	usage("unknown command", "fit")
	for _, c := range []string{"account", "calibrate", "train", "audit"} {
		usage(c+"/unknown flag", c, "--frobnicate")
		usage(c+"/stray argument", c, "extra")
	}
	// account
	acc := func(extra ...string) []string {
		return append([]string{"account", "--noise-multiplier", "1", "--delta", "1e-5"}, extra...)
	}
	usage("account/no noise multiplier", "account", "--delta", "1e-5")
	for _, z := range []string{"0", "-1", "NaN", "Inf", "x"} {
		usage("account/noise-multiplier="+z, "account", "--noise-multiplier", z, "--delta", "1e-5")
	}
	for _, q := range []string{"0", "1.5", "-0.1", "NaN"} {
		usage("account/sampling-rate="+q, acc("--sampling-rate", q)...)
	}
	for _, s := range []string{"0", "-3", "1.5"} {
		usage("account/steps="+s, acc("--steps", s)...)
	}
	for _, d := range []string{"0", "1", "-1e-5", "NaN", "2"} {
		usage("account/delta="+d, "account", "--noise-multiplier", "1", "--delta", d)
	}
	for _, e := range []string{"-1", "NaN", "Inf"} {
		usage("account/epsilon="+e, "account", "--noise-multiplier", "1", "--epsilon", e)
	}
	usage("account/both delta and epsilon", acc("--epsilon", "1")...)
	usage("account/unknown accountant", acc("--accountant", "laplace")...)
	usage("account/exact with sampling", acc("--accountant", "exact", "--sampling-rate", "0.1")...)
	usage("account/release z=0", "account", "--release", "z=0,steps=3", "--delta", "1e-5")
	usage("account/release q=2", "account", "--release", "z=1,q=2", "--delta", "1e-5")
	usage("account/release steps=0", "account", "--release", "z=1,steps=0", "--delta", "1e-5")
	usage("account/release no z", "account", "--release", "steps=3", "--delta", "1e-5")
	usage("account/release garbage", "account", "--release", "banana", "--delta", "1e-5")
	usage("account/release and noise-multiplier", "account", "--release", "z=1", "--noise-multiplier", "1", "--delta", "1e-5")
	// calibrate
	usage("calibrate/no epsilon", "calibrate", "--delta", "1e-5")
	for _, e := range []string{"0", "-1", "NaN", "Inf"} {
		usage("calibrate/epsilon="+e, "calibrate", "--epsilon", e, "--delta", "1e-5")
	}
	for _, d := range []string{"0", "1", "NaN"} {
		usage("calibrate/delta="+d, "calibrate", "--epsilon", "1", "--delta", d)
	}
	for _, q := range []string{"0", "1.01", "NaN"} {
		usage("calibrate/sampling-rate="+q, "calibrate", "--epsilon", "1", "--delta", "1e-5", "--sampling-rate", q)
	}
	usage("calibrate/steps=0", "calibrate", "--epsilon", "1", "--delta", "1e-5", "--steps", "0")
	usage("calibrate/unknown accountant", "calibrate", "--epsilon", "1", "--delta", "1e-5", "--accountant", "laplace")
	cs = append(cs, cliCase{name: "calibrate/unreachable", args: []string{"calibrate", "--epsilon", "1e-9", "--delta", "1e-20", "--steps", "1000000000000"}, status: 1})
	// audit
	usage("audit/no mechanism", "audit")
	usage("audit/unknown mechanism", "audit", "--mechanism", "laplace")
	for _, e := range []string{"0", "NaN", "Inf"} {
		usage("audit/epsilon="+e, "audit", "--mechanism", "gaussian", "--epsilon", e)
	}
	usage("audit/delta=1", "audit", "--mechanism", "gaussian", "--delta", "1")
	usage("audit/trials=1", "audit", "--mechanism", "gaussian", "--trials", "1")
	usage("audit/confidence=1", "audit", "--mechanism", "gaussian", "--confidence", "1")
	usage("audit/unknown break", "audit", "--mechanism", "gaussian", "--break", "everything")
	// train: bad flags
	tr := func(extra ...string) []string {
		return append([]string{"train", "--dataset", "digits", "--seed", "1", "--out", "model.npz", "--report", "report.json"}, extra...)
	}
	for _, e := range []string{"0", "-1", "NaN"} {
		usage("train/epsilon="+e, tr("--epsilon", e)...)
	}
	for _, d := range []string{"0", "1", "NaN"} {
		usage("train/delta="+d, tr("--delta", d)...)
	}
	for _, v := range []string{"0", "-1", "NaN", "Inf"} {
		usage("train/clip="+v, tr("--clip", v)...)
	}
	usage("train/reg=-1", tr("--reg", "-1")...)
	usage("train/lr=-1", tr("--lr", "-1")...)
	usage("train/lr=NaN", tr("--lr", "NaN")...)
	usage("train/steps=-1", tr("--steps", "-1")...)
	usage("train/batch-size=-1", tr("--method", "sgd", "--batch-size", "-1")...)
	usage("train/unknown method", tr("--method", "adaboost")...)
	usage("train/unknown dataset", "train", "--dataset", "cifar1000", "--seed", "1", "--out", "model.npz")
	usage("train/unknown features", tr("--features", "sift")...)
	usage("train/train without test", "train", "--train", "train.npz", "--seed", "1", "--out", "model.npz")
	// train: bad data files, each read as the training set with a good test set.
	goodTest := func(t *testing.T, dir string) {
		x := m32(6, 2)
		if err := features.WriteNPZ(filepath.Join(dir, "test.npz"), x, []int{0, 1, 0, 1, 0, 1}); err != nil {
			t.Fatal(err)
		}
	}
	for _, fc := range fileCases() {
		if fc.file == "" || strings.Contains(fc.file, "*") || fc.opts != (features.Options{}) {
			continue
		}
		data("train/data "+fc.name, func(t *testing.T, dir string) {
			goodTest(t, dir)
			writeFile(t, dir, fc.file, fc.data(t))
		}, "train", "--train", fc.file, "--test", "test.npz", "--method", "ls", "--seed", "1", "--out", "model.npz", "--report", "report.json")
	}
	data("train/data missing file", goodTest, "train", "--train", "nope.npz", "--test", "test.npz", "--seed", "1", "--out", "model.npz", "--report", "report.json")
	data("train/data one class", func(t *testing.T, dir string) {
		if err := features.WriteNPZ(filepath.Join(dir, "test.npz"), m32(6, 2), make([]int, 6)); err != nil {
			t.Fatal(err)
		}
		if err := features.WriteNPZ(filepath.Join(dir, "train.npz"), m32(6, 2), make([]int, 6)); err != nil {
			t.Fatal(err)
		}
	}, "train", "--train", "train.npz", "--test", "test.npz", "--method", "ls", "--seed", "1", "--out", "model.npz", "--report", "report.json")
	data("train/data test dim differs", func(t *testing.T, dir string) {
		goodTest(t, dir)
		if err := features.WriteNPZ(filepath.Join(dir, "train.npz"), m32(6, 3), []int{0, 1, 0, 1, 0, 1}); err != nil {
			t.Fatal(err)
		}
	}, "train", "--train", "train.npz", "--test", "test.npz", "--method", "ls", "--seed", "1", "--out", "model.npz", "--report", "report.json")
	data("train/data corrupt test set", func(t *testing.T, dir string) {
		if err := features.WriteNPZ(filepath.Join(dir, "train.npz"), m32(6, 2), []int{0, 1, 0, 1, 0, 1}); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "test.npz", []byte("not a zip"))
	}, "train", "--train", "train.npz", "--test", "test.npz", "--method", "ls", "--seed", "1", "--out", "model.npz", "--report", "report.json")
	data("train/out directory missing", nil, tr("--method", "ls", "--out", filepath.Join("no", "such", "model.npz"))...)
	return cs
}

var errEOF = errorsEOF()

func errorsEOF() error {
	// io.EOF, without importing io just for it in the table above.
	_, err := bytes.NewReader(nil).Read(make([]byte, 1))
	return err
}

// TestCLIBadInput runs every command-line case against the built binary.
func TestCLIBadInput(t *testing.T) {
	if dpoptBin == "" {
		t.Fatal("the dpopt binary did not build (see the log above)")
	}
	cs := cliCases()
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.setup != nil {
				c.setup(t, dir)
			}
			before := dirNames(t, dir)
			cmd := exec.Command(dpoptBin, c.args...)
			cmd.Dir = dir
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			status := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				status = ee.ExitCode()
			case err != nil:
				t.Fatalf("running dpopt: %v", err)
			}
			if status != c.status {
				t.Errorf("exit status %d, want %d (stderr %q)", status, c.status, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			if s := stderr.String(); !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
				if c.gap == "" {
					t.Errorf("stderr %q, want exactly one line", s)
				} else {
					t.Logf("gap: %s", c.gap)
				}
			} else if strings.Contains(s, "panic") || strings.Contains(s, "goroutine ") {
				t.Errorf("stderr %q looks like a panic", s)
			}
			if after := dirNames(t, dir); !slices.Equal(before, after) {
				t.Errorf("files %v after the run, want %v: no output may be created", after, before)
			}
		})
	}
	t.Logf("%d command-line bad-input cases", len(cs))
}

// accFormat wants an error from accountant for a malformed ledger or event.
// accountant has no sentinel for malformed JSON (it wraps *json.SyntaxError
// for bad syntax only), so these cases are taxonomy gaps.
var accFormat = is(accountant.ErrFormat)
