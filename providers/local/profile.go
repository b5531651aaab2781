package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/leptonml/lepton/internal/fsutil"
	"github.com/leptonml/lepton/runtime/data"
	"github.com/zclconf/go-cty/cty"
)

// ProfileBins is how many bins each column's histogram has.
const ProfileBins = 20

// DatasetProfile is what `lepton ui` shows of an applied dataset beyond its
// state attributes: rows kept and dropped at each preprocessing step, the
// split sizes and a histogram of each feature column as training sees it.
type DatasetProfile struct {
	Steps      []data.StepReport `json:"steps"`
	Splits     map[string]int    `json:"splits"`
	Histograms []data.Histogram  `json:"histograms"`
}

func profileOf(ds *data.Dataset) *DatasetProfile {
	return &DatasetProfile{
		Steps:      ds.Steps,
		Splits:     map[string]int{"train": ds.Train.N, "validation": ds.Validation.N, "test": ds.Test.N},
		Histograms: ds.Histograms(ProfileBins),
	}
}

// ProfilePath is where a dataset's profile is kept, beside its report.
func ProfilePath(dataDir, digest string) string {
	return filepath.Join(dataDir, "datasets", strings.TrimPrefix(digest, "sha256:")+".profile.json")
}

func writeProfile(dataDir string, ds *data.Dataset) error {
	if dataDir == "" {
		return nil
	}
	p := ProfilePath(dataDir, ds.Digest)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	b, err := json.Marshal(profileOf(ds))
	if err != nil {
		return err
	}
	if err := fsutil.WriteFile(p, b, 0o644, fsutil.Options{MkdirAll: true}); err != nil {
		return fmt.Errorf("writing the dataset profile: %w", err)
	}
	return nil
}

// Profile returns an applied dataset's profile: the file written at apply,
// or, when there is none (an inline dataset, or one applied by an older
// lepton), the profile of loading it again. ok is false when the state
// holds no digest yet.
func Profile(ctx context.Context, dir, dataDir string, attrs cty.Value) (p *DatasetProfile, ok bool, err error) {
	digest := str(attr(attrs, "digest"))
	if digest == "" {
		return nil, false, nil
	}
	if b, err := os.ReadFile(ProfilePath(dataDir, digest)); err == nil {
		p = &DatasetProfile{}
		if err := json.Unmarshal(b, p); err != nil {
			return nil, false, fmt.Errorf("%s: %w", ProfilePath(dataDir, digest), err)
		}
		return p, true, nil
	}
	spec, err := SpecFromValue(attrs, dir)
	if err != nil {
		return nil, false, err
	}
	ds, err := data.Load(ctx, spec)
	if err != nil {
		return nil, false, err
	}
	sub, err := subsetOf(attrs)
	if err != nil {
		return nil, false, err
	}
	if err := sub.apply(ds); err != nil {
		return nil, false, err
	}
	return profileOf(ds), true, nil
}
