package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dpopt/dpopt/features"
)

// readmeSnippet returns the Python code block of the README section that
// begins with heading.
func readmeSnippet(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, heading)
	require.GreaterOrEqual(t, i, 0, "README.md has no section %q", heading)
	s = s[i:]
	const open, fence = "```python\n", "\n```"
	i = strings.Index(s, open)
	require.GreaterOrEqual(t, i, 0, "README section %q has no ```python block", heading)
	s = s[i+len(open):]
	j := strings.Index(s, fence)
	require.GreaterOrEqual(t, j, 0, "unterminated ```python block in README section %q", heading)
	return s[:j+1]
}

// numpyPython returns a Python interpreter that can import numpy: python3 on
// PATH, else the system's /usr/bin/python3 (where Debian's python3-numpy,
// which CI installs, lives). Without one the test skips, except under CI
// (CI=true), where it fails: CI must run the README's snippet.
func numpyPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, name := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(name)
		if err != nil {
			continue
		}
		if exec.Command(p, "-c", "import numpy").Run() == nil {
			return p
		}
		tried = append(tried, p)
	}
	msg := "no python3 with numpy (tried " + strings.Join(tried, ", ") + "); apt-get install python3-numpy"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// snippetHarness runs the README's snippet with stand-ins for PyTorch: a
// module torch with no_grad and cat, tensors with .numpy(), a model that
// maps a batch to ReLU features of dimension d, and a loader of batches
// whose labels a linear map of the features decides. It prints the shape
// and sums of what it fed the snippet, for the test to compare with what
// dpopt reads.
const snippetHarness = `
import json, sys, types
import numpy as np

class Tensor:  # a torch.Tensor stand-in
    def __init__(self, a): self.a = np.asarray(a)
    def numpy(self): return self.a

class no_grad:
    def __enter__(self): return self
    def __exit__(self, *exc): return False

torch = types.ModuleType("torch")
torch.no_grad = no_grad
torch.cat = lambda ts: Tensor(np.concatenate([t.a for t in ts]))
sys.modules["torch"] = torch

seed, d, k = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
proj = np.random.default_rng(0).standard_normal((16, d))  # the "pretrained model"
heads = np.random.default_rng(1).standard_normal((d, k))  # decides the labels
model = lambda x: Tensor(np.maximum(x.a @ proj, 0))
loader = []
for b in (64, 64, 64, 37):  # a short last batch, as a DataLoader gives
    x = rng.standard_normal((b, 16))
    y = np.argmax(model(Tensor(x)).a @ heads, axis=1)
    loader.append((Tensor(x), Tensor(y)))

exec(open(sys.argv[1]).read(), {"model": model, "loader": loader})

feats = np.concatenate([model(x).a for x, _ in loader]).astype(np.float32)
labels = np.concatenate([y.a for _, y in loader])
print(json.dumps({"n": feats.shape[0], "d": feats.shape[1],
                  "sum": float(feats.astype(np.float64).sum()), "label_sum": int(labels.sum())}))
`

// TestReadmeNumpySnippet runs the README's "bring your own features" snippet
// with numpy (PyTorch stubbed), then reads the .npz it writes with
// features.Load and trains on it with dpopt train.
func TestReadmeNumpySnippet(t *testing.T) {
	py := numpyPython(t)
	snippet := readmeSnippet(t, "### Bring your own features")
	require.Contains(t, snippet, `np.savez("train.npz"`, "the snippet no longer writes train.npz; update this test")
	dir := t.TempDir()
	snipPath, harnessPath := filepath.Join(dir, "snippet.py"), filepath.Join(dir, "harness.py")
	require.NoError(t, os.WriteFile(snipPath, []byte(snippet), 0o644))
	require.NoError(t, os.WriteFile(harnessPath, []byte(snippetHarness), 0o644))

	const d, k = 32, 3
	type written struct {
		N, D     int
		Sum      float64
		LabelSum int `json:"label_sum"`
	}
	// Run the snippet twice, in two directories, for a training and a test set.
	var paths []string
	for i, seed := range []string{"10", "11"} {
		out := filepath.Join(dir, []string{"train", "test"}[i])
		require.NoError(t, os.Mkdir(out, 0o755))
		cmd := exec.Command(py, harnessPath, snipPath, seed, "32", "3")
		cmd.Dir = out
		stdout, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("the README snippet failed: %v\n%s", err, ee.Stderr)
		}
		require.NoError(t, err)
		var w written
		require.NoError(t, json.Unmarshal(stdout, &w))
		path := filepath.Join(out, "train.npz")
		x, y, err := features.Load(path, features.Options{})
		require.NoError(t, err, "features.Load of the snippet's .npz")
		sum, labelSum := 0.0, 0
		for _, v := range x.Data {
			sum += float64(v)
		}
		for _, l := range y {
			labelSum += l
		}
		if x.Rows != w.N || x.Cols != w.D || x.Cols != d || len(y) != w.N || labelSum != w.LabelSum ||
			math.Abs(sum-w.Sum) > 1e-9*math.Abs(w.Sum) { // float64 sums of the same float32s, in another order
			t.Fatalf("read %d×%d, feature sum %v, label sum %d; the snippet wrote %d×%d, %v, %d",
				x.Rows, x.Cols, sum, labelSum, w.N, w.D, w.Sum, w.LabelSum)
		}
		paths = append(paths, path)
	}

	got := trainOK(t, "--train", paths[0], "--test", paths[1], "--non-private", "--method", "ls")
	if got.NTrain != 229 || got.NTest != 229 || got.Dim != d || got.Classes != k {
		t.Errorf("dpopt train read n = %d/%d, d = %d, K = %d; want 229/229, %d, %d", got.NTrain, got.NTest, got.Dim, got.Classes, d, k)
	}
	// The labels are a linear function of the features: a linear model
	// learns them far above chance (1/3).
	if got.TestAccuracy < 0.6 {
		t.Errorf("test accuracy %.3f on the snippet's files, want ≥ 0.6", got.TestAccuracy)
	}
}
