package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"unsafe"
)

// Encoder renders state exactly as State.Encode does (indented JSON,
// resources sorted by address), but remembers each resource's rendering, so
// that the Persister's repeated writes during an apply cost a copy of the
// bytes rather than a fresh json.MarshalIndent of every resource (which
// validates and re-indents every attributes document each time: the main cost
// of persisting 10,000 resources a few dozen times).
//
// A remembered rendering is used only while the resource still has the same
// fields: the cache is keyed by the *Resource and checked against a shallow
// copy taken when it was rendered (strings by value, slices by identity; byte
// slices in state are replaced, never modified in place). An Encoder is not
// safe for concurrent use; the Persister calls it under its lock.
type Encoder struct {
	cache map[*Resource]encodedResource
	// buf is reused by Reuse for the next document: a state of 10,000
	// resources is tens of megabytes, and a fresh buffer per write is most of
	// what the garbage collector has to deal with during an apply.
	buf []byte
}

type encodedResource struct {
	snap Resource
	b    []byte
}

// resourceIndent is where a resource sits in the state document: inside the
// top-level object's "resources" array.
const resourceIndent = "    "

// Encode renders s into a new slice.
func (e *Encoder) Encode(s *State) ([]byte, error) {
	return e.encode(s, nil)
}

// EncodeReuse renders s into the Encoder's buffer: the result is valid only
// until the next call.
func (e *Encoder) EncodeReuse(s *State) ([]byte, error) {
	b, err := e.encode(s, e.buf[:0])
	if err == nil {
		e.buf = b
	}
	return b, err
}

func (e *Encoder) encode(s *State, out []byte) ([]byte, error) {
	// The header is every field but the resources, rendered by encoding/json so
	// that the document stays what MarshalIndent would make of State.
	h := *s
	h.Resources = nil
	if h.Outputs == nil {
		h.Outputs = map[string]Output{}
	}
	head, err := json.MarshalIndent(&h, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	const tail = "\"resources\": null\n}"
	if !bytes.HasSuffix(head, []byte(tail)) {
		// State gained a field after resources: no shortcut.
		return s.Encode()
	}
	head = head[:len(head)-len(tail)]

	sorted := append([]*Resource(nil), s.Resources...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Address < sorted[j].Address })
	next := make(map[*Resource]encodedResource, len(sorted))
	size := len(head) + 32
	parts := make([][]byte, len(sorted))
	for i, r := range sorted {
		er, ok := e.cache[r]
		if !ok || !sameFields(&er.snap, r) {
			b, err := json.MarshalIndent(r, resourceIndent, "  ")
			if err != nil {
				return nil, fmt.Errorf("encoding state: %w", err)
			}
			er = encodedResource{snap: *r, b: b}
		}
		next[r] = er
		parts[i] = er.b
		size += len(er.b) + len(resourceIndent) + 2
	}
	e.cache = next

	out = slices.Grow(out, size)
	out = append(out, head...)
	if len(parts) == 0 {
		out = append(out, "\"resources\": []\n}\n"...)
		return out, nil
	}
	out = append(out, "\"resources\": [\n"...)
	for i, b := range parts {
		if i > 0 {
			out = append(out, ",\n"...)
		}
		out = append(out, resourceIndent...)
		out = append(out, b...)
	}
	out = append(out, "\n  ]\n}\n"...)
	return out, nil
}

// sameFields reports whether r still has the fields snapshotted in old.
func sameFields(old, r *Resource) bool {
	return old.Address == r.Address && old.Kind == r.Kind && old.Name == r.Name &&
		old.Provider == r.Provider && old.Status == r.Status &&
		old.ProviderConfig == r.ProviderConfig && old.SchemaVersion == r.SchemaVersion && sameSlice(old.Private, r.Private) &&
		sameIndex(old.Index, r.Index) &&
		sameSlice(old.Attributes, r.Attributes) &&
		sameSlice(old.SensitiveAttributes, r.SensitiveAttributes) &&
		sameSlice(old.Dependencies, r.Dependencies)
}

func sameSlice[T any](a, b []T) bool {
	return len(a) == len(b) && unsafe.SliceData(a) == unsafe.SliceData(b)
}

// sameIndex compares the index values state holds (int, float64 from JSON,
// string, nil); anything else counts as changed, so it is rendered again.
func sameIndex(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case int:
		bi, ok := b.(int)
		return ok && a == bi
	case float64:
		bf, ok := b.(float64)
		return ok && a == bf
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	}
	return false
}
