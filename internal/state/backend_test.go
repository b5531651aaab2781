package state

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCheckWrite(t *testing.T) {
	stored := &Meta{Lineage: "a", Serial: 5}
	for _, tc := range []struct {
		name   string
		stored *Meta
		next   Meta
		force  bool
		want   error
	}{
		{"nothing stored", nil, Meta{"b", 1}, false, nil},
		{"newer", stored, Meta{"a", 6}, false, nil},
		{"same serial is a retry", stored, Meta{"a", 5}, false, nil},
		{"older", stored, Meta{"a", 4}, false, ErrStaleSerial},
		{"foreign", stored, Meta{"b", 9}, false, ErrLineage},
		{"foreign and older", stored, Meta{"b", 1}, false, ErrLineage},
		{"forced older", stored, Meta{"a", 1}, true, nil},
		{"forced foreign", stored, Meta{"b", 1}, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWrite("where", tc.stored, tc.next, WriteOptions{Force: tc.force})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "where") || !strings.Contains(err.Error(), "Nothing was written") {
				t.Fatalf("err %v, want %v naming the backend", err, tc.want)
			}
		})
	}
}

func TestReadMeta(t *testing.T) {
	s := New("test")
	s.Serial = 42
	for i := range 3000 { // larger than ReadMeta's look-ahead
		s.Put(&Resource{Address: "dataset.d" + string(rune('a'+i%26)) + strings.Repeat("x", i), Kind: "dataset"})
	}
	enc, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in string
		want     Meta
		wantErr  bool
	}{
		{"encoded", string(enc), MetaOf(s), false},
		{"fields late", `{"resources":[],"outputs":{},"version":1,"lineage":"l","serial":3}`, Meta{"l", 3}, false},
		{"unknown fields first", `{"x":{"y":[1,2]},"serial":7,"version":1,"lineage":"m"}`, Meta{"m", 7}, false},
		{"not json", `{`, Meta{}, true},
		{"no lineage", `{"version":1,"serial":2}`, Meta{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ReadMeta(bytes.NewReader([]byte(tc.in)))
			if (err != nil) != tc.wantErr || m != tc.want {
				t.Fatalf("ReadMeta = %+v, %v; want %+v (error %v)", m, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzReadMeta(f *testing.F) {
	f.Add([]byte(`{"version":1,"serial":3,"lineage":"l","resources":[]}`))
	f.Add([]byte(`{"resources":[{"address":"a","kind":"k"}],"version":1,"lineage":"l"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadMeta(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever ReadMeta accepts names a lineage; a state Parse accepts
		// gives the same answer.
		if m.Lineage == "" {
			t.Fatalf("accepted %q with no lineage", b)
		}
		if s, err := Parse(b); err == nil && MetaOf(s) != m {
			t.Fatalf("ReadMeta %+v, Parse %+v", m, MetaOf(s))
		}
	})
}
