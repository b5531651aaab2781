package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/leptonml/lepton/runtime/data"
	"github.com/zclconf/go-cty/cty"
)

// subset is a dataset's `subset` block: keep the rows of some classes, and
// at most TrainRows training rows, chosen with Seed. It applies after the
// data engine's pipeline, so normalisation statistics are those of the whole
// training split.
type subset struct {
	Classes   []string `json:"classes,omitempty"`
	TrainRows int      `json:"train_rows,omitempty"`
	Seed      int64    `json:"seed,omitempty"`
}

func subsetOf(v cty.Value) (*subset, error) {
	b := attr(v, "subset")
	if b.IsNull() {
		return nil, nil
	}
	s := &subset{Classes: strList(attr(b, "classes")), TrainRows: intAttr(b, "train_rows", 0), Seed: int64(intAttr(b, "seed", 1))}
	if s.TrainRows < 0 {
		return nil, fmt.Errorf("subset.train_rows must not be negative, got %d", s.TrainRows)
	}
	if len(s.Classes) == 0 && s.TrainRows == 0 {
		return nil, fmt.Errorf("subset needs classes or train_rows")
	}
	if len(s.Classes) > 0 && str(attr(v, "label")) == "" {
		return nil, fmt.Errorf("subset.classes needs a label column")
	}
	return s, nil
}

// digest folds the subset into the data engine's digest, so caches and
// consumers see a different dataset.
func (s *subset) digest(base string) string {
	if s == nil {
		return base
	}
	b, _ := json.Marshal(s)
	h := sha256.Sum256([]byte(base + "\x00subset\x00" + string(b)))
	return "sha256:" + hex.EncodeToString(h[:])
}

// apply selects the rows; classes are renumbered in the order given.
func (s *subset) apply(ds *data.Dataset) error {
	if s == nil {
		return nil
	}
	if len(s.Classes) > 0 {
		remap := make([]int, len(ds.Classes))
		for i, c := range ds.Classes {
			remap[i] = slices.Index(s.Classes, c)
		}
		for _, c := range s.Classes {
			if !slices.Contains(ds.Classes, c) {
				return fmt.Errorf("subset.classes: %q is not a class of this dataset (%s)", c, strings.Join(ds.Classes, ", "))
			}
		}
		for _, m := range []*data.Matrix{&ds.Train, &ds.Validation, &ds.Test} {
			keep := make([]int, 0, m.N)
			for i := 0; i < m.N; i++ {
				if remap[int(m.Y[i])] >= 0 {
					keep = append(keep, i)
				}
			}
			selectRows(m, keep)
			for i := range m.Y {
				m.Y[i] = float32(remap[int(m.Y[i])])
			}
		}
		ds.Classes = append([]string(nil), s.Classes...)
	}
	if s.TrainRows > 0 && ds.Train.N > s.TrainRows {
		rng := rand.New(rand.NewPCG(uint64(s.Seed), 0x5eed))
		keep := rng.Perm(ds.Train.N)[:s.TrainRows]
		slices.Sort(keep)
		selectRows(&ds.Train, keep)
	}
	ds.Rows = ds.Train.N + ds.Validation.N + ds.Test.N
	ds.Steps = append(ds.Steps, data.StepReport{Step: "subset", RowsOut: ds.Rows,
		Detail: fmt.Sprintf("classes %v, at most %d training rows (seed %d)", s.Classes, s.TrainRows, s.Seed)})
	return nil
}

func selectRows(m *data.Matrix, keep []int) {
	x := make([]float32, 0, len(keep)*m.D)
	var y, t []float32
	for _, i := range keep {
		x = append(x, m.X[i*m.D:(i+1)*m.D]...)
		if m.Y != nil {
			y = append(y, m.Y[i])
		}
		if m.Target != nil {
			t = append(t, m.Target[i])
		}
	}
	m.X, m.Y, m.Target, m.N = x, y, t, len(keep)
}
