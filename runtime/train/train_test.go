package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leptonml/lepton/runtime/artifact"
)

func mlpSpec(hidden ...int) Spec {
	return Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: hidden, Activation: "relu"},
		Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.001}, Epochs: 3, BatchSize: 64, Seed: 1}
}

func weightsOf(m *artifact.Model) [][]float32 {
	var out [][]float32
	for _, w := range m.Weights {
		out = append(out, w.Data)
	}
	return out
}

func equalWeights(t *testing.T, a, b *artifact.Model) {
	t.Helper()
	wa, wb := weightsOf(a), weightsOf(b)
	if len(wa) != len(wb) {
		t.Fatalf("%d vs %d weight tensors", len(wa), len(wb))
	}
	for i := range wa {
		for j := range wa[i] {
			if math.Float32bits(wa[i][j]) != math.Float32bits(wb[i][j]) {
				t.Fatalf("weight %d[%d]: %v vs %v", i, j, wa[i][j], wb[i][j])
			}
		}
	}
}

// baseModel trains a tiny model to use as a base in Check tests.
func tinyModel(t *testing.T, features int, hidden []int, classes []string) *artifact.Model {
	t.Helper()
	s := Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: hidden}, Epochs: 1, BatchSize: 4, Seed: 1}.withDefaults()
	arch, err := buildArchitecture(s, Shape{Features: features, Classes: classes})
	if err != nil {
		t.Fatal(err)
	}
	m := &artifact.Model{Kind: artifact.KindSupervised, Architecture: arch, Weights: initWeights(arch, 1), ClassLabels: classes}
	if _, err := (artifact.Store{Dir: t.TempDir()}).Put(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckErrors(t *testing.T) {
	digits := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	mnist := Shape{Features: 784, ImageShape: []int{1, 28, 28}, Classes: digits}
	iris := Shape{Features: 4, Classes: []string{"setosa", "versicolor", "virginica"}}
	base128 := tinyModel(t, 784, []int{128}, digits)
	baseIris := tinyModel(t, 4, []int{128}, iris.Classes)
	q := &artifact.Model{Kind: artifact.KindQLearning, Payload: json.RawMessage(`{}`)}
	mod := func(f func(*Spec)) Spec { s := mlpSpec(128); f(&s); return s }
	cases := []struct {
		name string
		spec Spec
		data Shape
		base *artifact.Model
		want string
	}{
		{"one class", mlpSpec(128), Shape{Features: 4, Classes: []string{"setosa"}}, nil, `single class "setosa"`},
		{"no label", mlpSpec(128), Shape{Features: 4}, nil, "no classes"},
		{"epochs 0", mod(func(s *Spec) { s.Epochs = 0 }), mnist, nil, "epochs is 0: it must be at least 1"},
		{"batch -1", mod(func(s *Spec) { s.BatchSize = -1 }), mnist, nil, "batch_size is -1: it must be at least 1"},
		{"feature count vs base", mlpSpec(128), mnist, baseIris, "takes 4 input features (shape [4]), the dataset has 784"},
		{"base of another shape", mlpSpec(64), mnist, base128, "layer 0 is dense 784->128 relu, this model's is dense 784->64 relu"},
		{"base depth", mlpSpec(128, 32), mnist, base128, "has 2 layers"},
		{"base not a network", mlpSpec(128), mnist, q, "q_learning model"},
		{"freeze without base", mod(func(s *Spec) { s.FreezeLayers = 1 }), mnist, nil, "needs a base_model"},
		{"freeze everything", mod(func(s *Spec) { s.FreezeLayers = 2 }), mnist, base128, "freezes every one of the 2 weight layers"},
		{"unknown kind", mod(func(s *Spec) { s.Model.Kind = "transformer" }), mnist, nil, `unknown model kind "transformer"`},
		{"unknown optimizer", mod(func(s *Spec) { s.Optimizer.Name = "adagrad" }), mnist, nil, `unknown optimizer "adagrad"`},
		{"unknown activation", mod(func(s *Spec) { s.Model.Activation = "gelu" }), mnist, nil, `unknown activation "gelu"`},
		{"unknown objective", mod(func(s *Spec) { s.Objective = "ranking" }), mnist, nil, `unknown objective "ranking"`},
		{"cnn on a table", mod(func(s *Spec) { s.Model.Kind = "cnn" }), iris, nil, "cnn needs image rows"},
		{"dropout", mod(func(s *Spec) { s.Model.Dropout = 1 }), mnist, nil, "dropout 1"},
		{"early stopping metric", mod(func(s *Spec) { s.EarlyStopping = &EarlyStopping{Metric: "f1", Patience: 1} }), mnist, nil, `early_stopping metric "f1"`},
		{"linear with hidden", mod(func(s *Spec) { s.Model.Kind = "linear" }), mnist, nil, "linear has no hidden layers"},
		{"unknown average", mod(func(s *Spec) { s.Average = "swa" }), mnist, nil, `unknown average "swa"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check(c.spec, c.data, c.base)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
	// Several problems are all reported.
	s := mlpSpec(128)
	s.Epochs, s.BatchSize = 0, 0
	if err := Check(s, mnist, nil); err == nil || !strings.Contains(err.Error(), "epochs") || !strings.Contains(err.Error(), "batch_size") {
		t.Fatalf("err = %v", err)
	}
	// And good specs pass, including a new head on a base with other classes.
	five := Shape{Features: 784, Classes: digits[5:]}
	s = mlpSpec(128)
	s.FreezeLayers = 1
	if err := Check(s, five, base128); err != nil {
		t.Fatal(err)
	}
}

func TestRunRejectsBeforeWork(t *testing.T) {
	d := irisData(t)
	d.Classes = []string{"setosa"}
	for i := range d.Train.Labels {
		d.Train.Labels[i] = 0
	}
	for i := range d.Test.Labels {
		d.Test.Labels[i] = 0
	}
	dir := filepath.Join(t.TempDir(), "run")
	_, err := Run(context.Background(), mlpSpec(8), d, nil, Options{RunDir: dir})
	if err == nil || !strings.Contains(err.Error(), "single class") {
		t.Fatalf("err = %v", err)
	}
	if _, serr := os.Stat(dir); !errors.Is(serr, os.ErrNotExist) {
		t.Fatal("a rejected run created its run directory")
	}
	d = irisData(t)
	d.Train.Labels[3] = 7
	if _, err := Run(context.Background(), mlpSpec(8), d, nil, Options{}); err == nil || !strings.Contains(err.Error(), "train split row 3: label index 7") {
		t.Fatalf("err = %v", err)
	}
	d = irisData(t)
	d.Train.X[5] = float32(math.NaN())
	if _, err := Run(context.Background(), mlpSpec(8), d, nil, Options{}); err == nil || !strings.Contains(err.Error(), "row 1 feature sepal_width is NaN") {
		t.Fatalf("err = %v", err)
	}
}

func TestIrisOptimizers(t *testing.T) {
	cases := []struct {
		name string
		opt  OptimizerSpec
		act  string
		kind string
		min  float64
	}{
		{"adam relu", OptimizerSpec{Name: "adam", LearningRate: 0.01}, "relu", "mlp", 0.93},
		{"sgd momentum tanh", OptimizerSpec{Name: "sgd", LearningRate: 0.05, Momentum: 0.9, WeightDecay: 1e-4}, "tanh", "mlp", 0.93},
		{"rmsprop sigmoid", OptimizerSpec{Name: "rmsprop", LearningRate: 0.01}, "sigmoid", "mlp", 0.93},
		{"linear", OptimizerSpec{Name: "adam", LearningRate: 0.05}, "relu", "linear", 0.9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := irisData(t)
			s := Spec{Objective: "classification", Model: ModelSpec{Kind: c.kind, Activation: c.act}, Optimizer: c.opt, Epochs: 100, BatchSize: 16, Seed: 3}
			if c.kind == "mlp" {
				s.Model.Hidden = []int{16}
			}
			store := artifact.Store{Dir: t.TempDir()}
			res, err := Run(context.Background(), s, d, nil, Options{Store: &store})
			if err != nil {
				t.Fatal(err)
			}
			if acc := res.Metrics["test_accuracy"]; acc < c.min {
				t.Fatalf("iris test accuracy %.3f < %.2f", acc, c.min)
			}
			// The stored artifact predicts from raw rows (it applies the z-score itself).
			m, err := store.Get(context.Background(), res.Digest)
			if err != nil {
				t.Fatal(err)
			}
			raw := []float32{5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3}
			p, err := m.Predict(raw, 2)
			if err != nil {
				t.Fatal(err)
			}
			if argmax(p[:3]) != 0 || argmax(p[3:]) != 2 {
				t.Fatalf("raw rows predicted %v, want setosa then virginica", p)
			}
		})
	}
}

func TestDeterministicAndResumeAfterCancel(t *testing.T) {
	d := mnistData(t, nil, 2000, 500)
	s := mlpSpec(32)
	s.Model.Dropout = 0.2
	s.EarlyStopping = &EarlyStopping{Metric: "val_loss", Patience: 5}
	d.Validation = d.Test
	a, err := Run(context.Background(), s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	equalWeights(t, a.Model, b.Model)
	if fmt.Sprint(a.Metrics) != fmt.Sprint(b.Metrics) {
		t.Fatalf("metrics differ: %v vs %v", a.Metrics, b.Metrics)
	}

	// Cancel in the middle of epoch 2, then resume from the checkpoint.
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	_, err = runHooked(ctx, s, d, nil, Options{RunDir: dir}, func(epoch, batch int) {
		if epoch == 1 && batch == 10 {
			cancel()
		}
	})
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	c, err := Run(context.Background(), s, d, nil, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if c.ResumedFrom != 1 {
		t.Fatalf("resumed from %d completed epochs, want 1", c.ResumedFrom)
	}
	equalWeights(t, a.Model, c.Model)
	log, _ := os.ReadFile(filepath.Join(dir, "train.log"))
	if !strings.Contains(string(log), "interrupted at epoch 2, batch 11") || !strings.Contains(string(log), "resuming from checkpoint: epoch 2, batch 11") {
		t.Fatalf("train.log:\n%s", log)
	}

	// Another seed gives other weights.
	s.Seed = 2
	e, err := Run(context.Background(), s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(weightsOf(e.Model)[0], weightsOf(a.Model)[0]) {
		t.Fatal("seed does not change the weights")
	}

	// A checkpoint from another spec is refused, not silently reused.
	s.Seed = 1
	s.Epochs = 4
	if _, err := Run(context.Background(), s, d, nil, Options{RunDir: dir}); err == nil || !strings.Contains(err.Error(), "checkpoint of another run") {
		t.Fatalf("err = %v", err)
	}
}

const childEnv = "LEPTON_TRAIN_RESUME_CHILD"

func resumeSpec() Spec {
	s := mlpSpec(64)
	s.Epochs = 8
	return s
}

// TestResumeAfterKill runs training in a child process (this test binary,
// re-executed), kills it with SIGKILL once it has written a checkpoint,
// resumes in this process and compares with an uninterrupted run.
func TestResumeAfterKill(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		_, err := Run(context.Background(), resumeSpec(), mnistData(t, nil, 4000, 200), nil, Options{RunDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeAfterKill$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, checkpointFile)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(cp); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("child wrote no checkpoint in 2 minutes")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v", err)
	}
	d := mnistData(t, nil, 4000, 200)
	resumed, err := Run(context.Background(), resumeSpec(), d, nil, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumedFrom < 1 || resumed.ResumedFrom >= resumeSpec().Epochs {
		t.Fatalf("resumed after %d epochs: the kill did not land mid-run", resumed.ResumedFrom)
	}
	whole, err := Run(context.Background(), resumeSpec(), d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	equalWeights(t, whole.Model, resumed.Model)
	t.Logf("killed after %d epochs; resumed run's weights equal the uninterrupted run's", resumed.ResumedFrom)
}

func TestRegression(t *testing.T) {
	// y = 3a - 2b + 0.5ab + 10 + noise: an MLP must beat predicting the mean by far.
	r := rand.New(rand.NewPCG(5, 5))
	d := &Data{Features: []string{"a", "b"}}
	for i := 0; i < 1200; i++ {
		a, b := r.Float64()*4-2, r.Float64()*4-2
		y := 3*a - 2*b + 0.5*a*b + 10 + r.NormFloat64()*0.1
		sp := &d.Train
		if i >= 1000 {
			sp = &d.Test
		}
		sp.X = append(sp.X, float32(a), float32(b))
		sp.Targets = append(sp.Targets, float32(y))
	}
	s := Spec{Objective: "regression", Model: ModelSpec{Kind: "mlp", Hidden: []int{32}, Activation: "tanh"},
		Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.01}, Epochs: 60, BatchSize: 32, Seed: 1}
	res, err := Run(context.Background(), s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, sd := meanStd(d.Test.Targets)
	if rmse := res.Metrics["test_rmse"]; rmse > 0.1*sd {
		t.Fatalf("test rmse %.3f, target std %.3f", rmse, sd)
	}
	p, err := res.Model.Predict([]float32{1, 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(p[0])-11.5) > 0.5 {
		t.Fatalf("f(1,1) = %v, want about 11.5", p[0])
	}
}

// TestGraphMatchesPredict checks that the gorgonia training graph and the
// artifact's pure-Go forward pass compute the same network (layouts of conv
// filters, flattening and biases), by comparing the training loss of one
// batch with the loss computed from Predict's probabilities.
func TestGraphMatchesPredict(t *testing.T) {
	d := mnistData(t, nil, 64, 10)
	s := Spec{Objective: "classification", Model: ModelSpec{Kind: "cnn", Hidden: []int{16}, Filters: []int{3, 4}}, Epochs: 1, BatchSize: 64, Seed: 4, Average: "none"}.withDefaults()
	r, err := newRunner(s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for i := range r.weights { // random biases too, so bias layouts are tested
		if len(r.weights[i].Shape) == 1 {
			for j := range r.weights[i].Data {
				r.weights[i].Data[j] = float32(j%3) * 0.1
			}
		}
	}
	rows := make([]int, 64)
	for i := range rows {
		rows[i] = i
	}
	r.fillBatch(rows, 0, 0)
	loss, err := r.gr.step()
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := r.evaluate(d.Train, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(loss)-want) > 1e-4 {
		t.Fatalf("graph loss %v, Predict loss %v", loss, want)
	}
}

// TestSyncRunnerInUse guards the reflection into gorgonia's tape machine
// (vmrun.go): if an upgrade breaks it the code falls back to RunAll, which is
// correct but several times slower on a busy machine; this says so loudly.
func TestSyncRunnerInUse(t *testing.T) {
	d := irisData(t)
	s := mlpSpec(8).withDefaults()
	r, err := newRunner(s, d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.gr.sync == nil {
		t.Fatal("gorgonia's tapeMachine.Run could not be reached: training falls back to RunAll")
	}
}

// TestGradients compares the graph's gradients with central finite
// differences of its loss, for a few entries of every parameter, and checks
// that huge logits do not overflow the loss.
func TestGradients(t *testing.T) {
	d := irisData(t)
	for _, act := range []string{"relu", "tanh", "sigmoid"} {
		s := Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: []int{6}, Activation: act}, Epochs: 1, BatchSize: 16, Seed: 2}.withDefaults()
		r, err := newRunner(s, d, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r.fillBatch(seq(0, 16), 0, 0)
		if _, err := r.gr.step(); err != nil {
			t.Fatal(err)
		}
		for _, i := range r.gr.trainIdx {
			g, err := r.gr.grad(i)
			if err != nil {
				t.Fatal(err)
			}
			analytic := slices.Clone(g)
			w := r.weights[i].Data
			for _, j := range []int{0, len(w) / 2, len(w) - 1} {
				old := w[j]
				w[j] = old + 1e-2
				lp, _ := r.gr.step()
				w[j] = old - 1e-2
				lm, _ := r.gr.step()
				w[j] = old
				num := float64(lp-lm) / 2e-2
				if math.Abs(num-float64(analytic[j])) > 2e-3+0.05*math.Abs(num) {
					t.Errorf("%s: d loss/d %s[%d]: analytic %v, numeric %v", act, r.weights[i].Name, j, analytic[j], num)
				}
			}
		}
		r.close()
	}
	// The convolution path (batchedConv, max-pool, flatten) on MNIST rows:
	// against finite differences (a small step, as ReLU and max-pool kinks
	// are close), and against gorgonia's own Conv2d, which must agree.
	md := mnistData(t, nil, 16, 1)
	s := Spec{Objective: "classification", Model: ModelSpec{Kind: "cnn", Hidden: []int{4}, Filters: []int{2, 3}}, Epochs: 1, BatchSize: 16, Seed: 5}.withDefaults()
	var grads [2][][]float32
	for k, o := range []graphOpts{{}, {gorgoniaConv: true}} {
		r, err := newRunner(s, md, nil, Options{graph: o})
		if err != nil {
			t.Fatal(err)
		}
		for i := range r.weights { // non-zero biases, so their gradients are exercised
			if len(r.weights[i].Shape) == 1 {
				for j := range r.weights[i].Data {
					r.weights[i].Data[j] = 0.05 * float32(j%3)
				}
			}
		}
		r.fillBatch(seq(0, 16), 0, 0)
		if _, err := r.gr.step(); err != nil {
			t.Fatal(err)
		}
		for _, i := range r.gr.trainIdx {
			g, err := r.gr.grad(i)
			if err != nil {
				t.Fatal(err)
			}
			grads[k] = append(grads[k], slices.Clone(g))
		}
		if k == 0 {
			for _, i := range r.gr.trainIdx {
				w := r.weights[i].Data
				for _, j := range []int{0, len(w) / 3, len(w) - 1} {
					old := w[j]
					w[j] = old + 1e-3
					lp, _ := r.gr.step()
					w[j] = old - 1e-3
					lm, _ := r.gr.step()
					w[j] = old
					num := float64(lp-lm) / 2e-3
					if a := float64(grads[0][i][j]); math.Abs(num-a) > 2e-3+0.05*math.Abs(num) {
						t.Errorf("cnn: d loss/d %s[%d]: analytic %v, numeric %v", r.weights[i].Name, j, a, num)
					}
				}
			}
		}
		r.close()
	}
	for i := range grads[0] {
		for j := range grads[0][i] {
			a, b := float64(grads[0][i][j]), float64(grads[1][i][j])
			if math.Abs(a-b) > 1e-5+1e-4*math.Abs(b) {
				t.Fatalf("gradient %d[%d]: batchedConv %v, gorgonia Conv2d %v", i, j, a, b)
			}
		}
	}

	// Row maxima are taken per row: a huge logit in a later row must not overflow.
	x := []float32{0, 1, 2, 3000, -5, 1}
	y := []float32{0, 0, 1, 1, 0, 0}
	v, err := sceOp{}.Do(tensorOf(x, 2, 3), tensorOf(y, 2, 3))
	if err != nil {
		t.Fatal(err)
	}
	want := (-math.Log(math.Exp(2)/(1+math.E+math.Exp(2))) + 0) / 2
	if got := float64(v.Data().(float32)); math.IsNaN(got) || math.Abs(got-want) > 1e-5 {
		t.Fatalf("loss %v, want %v", got, want)
	}
}

func TestEarlyStopping(t *testing.T) {
	d := irisData(t)
	d.Validation = d.Test
	// A learning rate this high overfits 120 rows quickly, so val_loss turns up.
	s := Spec{Objective: "classification", Model: ModelSpec{Kind: "mlp", Hidden: []int{64}}, Optimizer: OptimizerSpec{Name: "adam", LearningRate: 0.05},
		Epochs: 200, BatchSize: 8, Seed: 1, EarlyStopping: &EarlyStopping{Metric: "val_loss", Patience: 3}}
	dir := t.TempDir()
	res, err := Run(context.Background(), s, d, nil, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.StoppedEarly || res.EpochsCompleted >= 200 || len(res.History) != res.EpochsCompleted {
		t.Fatalf("stopped early %v after %d epochs (history %d)", res.StoppedEarly, res.EpochsCompleted, len(res.History))
	}
	best := res.History[0]
	for _, h := range res.History {
		if h.ValLoss < best.ValLoss {
			best = h
		}
	}
	if res.EpochsCompleted != best.Epoch+3 {
		t.Fatalf("stopped after epoch %d, best was %d with patience 3", res.EpochsCompleted, best.Epoch)
	}
	// The model is the best epoch's: its validation loss is the best one.
	plain := s
	plain.Average = "none"
	r, err := newRunner(plain.withDefaults(), d, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for i := range r.weights {
		copy(r.weights[i].Data, res.Model.Weights[i].Data)
	}
	vl, _, err := r.evaluate(d.Validation, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(vl-best.ValLoss) > 1e-9 || res.Metrics["val_loss"] != best.ValLoss {
		t.Fatalf("model val_loss %v, metrics %v, best epoch %v", vl, res.Metrics["val_loss"], best.ValLoss)
	}
	// Running again over the finished checkpoint returns the same model without training.
	again, err := Run(context.Background(), s, d, nil, Options{RunDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	equalWeights(t, res.Model, again.Model)
}

func TestCorruptCheckpoint(t *testing.T) {
	d := irisData(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(context.Background(), mlpSpec(8), d, nil, Options{RunDir: dir})
	if err == nil || !strings.Contains(err.Error(), "checkpoint.gob is unreadable") || !strings.Contains(err.Error(), "remove it to start over") {
		t.Fatalf("err = %v", err)
	}
}
