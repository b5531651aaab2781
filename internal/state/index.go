package state

import "unsafe"

// resourceIndex maps addresses to positions in State.Resources, so that Put
// does not scan every resource (an apply of 10,000 resources puts each one,
// which made the scans quadratic).
type resourceIndex struct {
	owner *State // a copied State (Clone) never uses its original's index
	pos   map[string]int
	data  **Resource // the Resources backing array the index describes
	n     int        // and its length
}

// valid reports whether the index still describes s.Resources: any change to
// the slice other than through Put (a Remove, an append, a new slice) changes
// its length or backing array.
func (x *resourceIndex) valid(s *State) bool {
	return x != nil && x.owner == s && x.n == len(s.Resources) && x.data == unsafe.SliceData(s.Resources)
}

func (s *State) resourceIndex() *resourceIndex {
	if s.index.valid(s) {
		return s.index
	}
	x := &resourceIndex{owner: s, pos: make(map[string]int, len(s.Resources))}
	for i, r := range s.Resources {
		x.pos[r.Address] = i
	}
	x.data, x.n = unsafe.SliceData(s.Resources), len(s.Resources)
	s.index = x
	return x
}

// Put replaces the resource with r's address, or appends r.
func (s *State) Put(r *Resource) {
	x := s.resourceIndex()
	if i, ok := x.pos[r.Address]; ok {
		if s.Resources[i].Address == r.Address {
			s.Resources[i] = r
			return
		}
		// A resource was replaced in place by one with another address.
		s.index = nil
		s.Put(r)
		return
	}
	s.Resources = append(s.Resources, r)
	x.pos[r.Address] = len(s.Resources) - 1
	x.data, x.n = unsafe.SliceData(s.Resources), len(s.Resources)
}
