package state

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPrefetched(t *testing.T) {
	doc := func(serial string) string {
		return `{"version": 1, "serial": ` + serial + `, "lineage": "l", "outputs": {}, "resources": []}`
	}
	cases := []struct {
		name        string
		before      string // file when the prefetch runs ("" = absent)
		after       string // file when read under the lock ("" = absent)
		otherPath   bool   // the backend is another file
		wantSerial  uint64
		wantNil     bool
		wantErrText string
	}{
		{name: "unchanged", before: doc("3"), after: doc("3"), wantSerial: 3},
		{name: "changed after the prefetch", before: doc("3"), after: doc("4"), wantSerial: 4},
		{name: "created after the prefetch", after: doc("5"), wantSerial: 5},
		{name: "removed after the prefetch", before: doc("3"), wantNil: true},
		{name: "another backend path", before: doc("3"), after: doc("7"), otherPath: true, wantSerial: 7},
		{name: "corrupt", before: "{", after: "{", wantErrText: "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "lepton.state.json")
			if c.before != "" {
				os.WriteFile(path, []byte(c.before), 0o600)
			}
			pf := PrefetchLocal(path)
			<-pf.done
			read := path
			if c.otherPath {
				read = filepath.Join(dir, "other.json")
			}
			os.Remove(path)
			if c.after != "" {
				os.WriteFile(read, []byte(c.after), 0o600)
			}
			s, err := NewLocal(read).ReadPrefetched(context.Background(), pf)
			switch {
			case c.wantErrText != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErrText) || !strings.Contains(err.Error(), read) {
					t.Fatalf("error %v, want one naming %s with %q", err, read, c.wantErrText)
				}
			case err != nil:
				t.Fatal(err)
			case c.wantNil:
				if s != nil {
					t.Fatalf("state %+v, want none", s)
				}
			case s == nil || s.Serial != c.wantSerial:
				t.Fatalf("state %+v, want serial %d", s, c.wantSerial)
			}
		})
	}
}
