package runmetrics

import (
	"reflect"
	"testing"

	"github.com/leptonml/lepton/runtime/rl"
	"github.com/leptonml/lepton/runtime/train"
)

func TestResume(t *testing.T) {
	dir := t.TempDir()
	if m := Resume(dir, "q_learning", 10); m.Planned != 10 || m.Episodes != nil {
		t.Fatalf("fresh: %+v", m)
	}
	m := &Metrics{Objective: "q_learning", Planned: 10}
	for _, e := range []int{2, 4, 6} {
		m.AddEpisode(rl.Progress{Episode: e})
	}
	if err := m.Write(dir); err != nil {
		t.Fatal(err)
	}
	r := Resume(dir, "q_learning", 10)
	r.AddEpisode(rl.Progress{Episode: 4}) // resumed from the checkpoint at 3
	if got := r.Episodes; !reflect.DeepEqual(got, []rl.Progress{{Episode: 2}, {Episode: 4}}) {
		t.Errorf("episodes after resume: %+v", got)
	}
	// Another objective's record is not resumed.
	if r := Resume(dir, "classification", 3); r.Epochs != nil || r.Episodes != nil {
		t.Errorf("resumed across objectives: %+v", r)
	}
	s := &Metrics{Objective: "classification", Epochs: []train.EpochMetrics{{Epoch: 1, TrainLoss: 0.5}}}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	if r := Resume(dir, "classification", 3); !reflect.DeepEqual(r.Epochs, s.Epochs) {
		t.Errorf("epochs: %+v", r.Epochs)
	}
}
