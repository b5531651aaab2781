package planner

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/lang"
)

func TestUpgradeResource(t *testing.T) {
	// Version 2 renamed "old" to "new"; version 1 had no upgrade path kept.
	schema := &lang.KindSchema{Version: 2, Upgrade: func(from int, attrs json.RawMessage) (json.RawMessage, error) {
		if from != 1 {
			return nil, errors.New("no upgrade from that version")
		}
		return json.RawMessage(strings.Replace(string(attrs), `"old"`, `"new"`, 1)), nil
	}}
	cases := []struct {
		name    string
		version int
		want    string // attributes after, or the error's text
		same    bool   // the resource itself is returned
	}{
		{"current", 2, `{"old":1}`, true},
		{"older", 1, `{"new":1}`, false},
		{"too old", 0, "no upgrade from that version", false},
		{"newer", 3, "newer than this lepton knows", false},
	}
	for _, c := range cases {
		r := &state.Resource{Address: "dataset.d", Kind: "dataset", SchemaVersion: c.version, Attributes: json.RawMessage(`{"old":1}`)}
		got, err := upgradeResource(r, schema)
		switch {
		case err != nil:
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.want)
			}
		case string(got.Attributes) != c.want || got.SchemaVersion != 2 || (got == r) != c.same:
			t.Errorf("%s: got %s v%d (same %v)", c.name, got.Attributes, got.SchemaVersion, got == r)
		case !c.same && string(r.Attributes) != `{"old":1}`:
			t.Errorf("%s: the state's resource was changed in place", c.name)
		}
	}
}
