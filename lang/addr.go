package lang

import (
	"fmt"
	"github.com/leptonml/lepton/lang/kinds"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Kinds are the resource kinds lepton knows, in the order the docs list
// them (lang/kinds); never changed after start-up.
var Kinds = func() []string {
	var names []string
	for _, k := range kinds.All() {
		names = append(names, k.Name)
	}
	return names
}()

// IsKind reports whether s names a resource kind.
func IsKind(s string) bool {
	for _, k := range Kinds {
		if k == s {
			return true
		}
	}
	return false
}

// Resource addresses a resource block: KIND.NAME.
type Resource struct {
	Kind string
	Name string
}

func (r Resource) String() string { return r.Kind + "." + r.Name }

// Instance returns the address of one instance of r.
func (r Resource) Instance(k Key) Instance { return Instance{Resource: r, Key: k} }

// Key is an instance key: NoKey, an IntKey under count, a StringKey under for_each.
type Key interface {
	keyString() string
	// Value is the key as a cty value (count.index or each.key).
	Value() cty.Value
}

// NoKey is the key of a resource without count or for_each.
var NoKey Key

// IntKey is a count index.
type IntKey int

func (k IntKey) keyString() string { return "[" + strconv.Itoa(int(k)) + "]" }

// Value returns the key as a cty number.
func (k IntKey) Value() cty.Value { return cty.NumberIntVal(int64(k)) }

// StringKey is a for_each key.
type StringKey string

func (k StringKey) keyString() string { return "[" + strconv.Quote(string(k)) + "]" }

// Value returns the key as a cty string.
func (k StringKey) Value() cty.Value { return cty.StringVal(string(k)) }

// Instance addresses one instance of a resource.
type Instance struct {
	Resource Resource
	Key      Key
}

func (a Instance) String() string {
	if a.Key == nil {
		return a.Resource.String()
	}
	return a.Resource.String() + a.Key.keyString()
}

// KeyJSON is the key in the shape Terraform's JSON formats use for `index`.
func KeyJSON(k Key) any {
	switch k := k.(type) {
	case IntKey:
		return int(k)
	case StringKey:
		return string(k)
	}
	return nil
}

// KeyFromJSON reverses KeyJSON.
func KeyFromJSON(v any) Key {
	switch v := v.(type) {
	case float64:
		return IntKey(int(v))
	case int:
		return IntKey(v)
	case string:
		return StringKey(v)
	}
	return NoKey
}

// Target is what -target and -replace name: a whole resource, or one instance.
type Target struct {
	Resource Resource
	Key      Key
	// AllKeys is true when the address names the resource without an index,
	// which selects every instance.
	AllKeys bool
}

func (t Target) String() string {
	if t.AllKeys {
		return t.Resource.String()
	}
	return t.Resource.Instance(t.Key).String()
}

// Matches reports whether the target selects the instance.
func (t Target) Matches(a Instance) bool {
	if a.Resource != t.Resource {
		return false
	}
	return t.AllKeys || keyEqual(t.Key, a.Key)
}

func keyEqual(a, b Key) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.keyString() == b.keyString()
}

// ParseTarget parses KIND.NAME, KIND.NAME[0] or KIND.NAME["key"].
func ParseTarget(s string) (Target, error) {
	trav, diags := hclsyntax.ParseTraversalAbs([]byte(s), "", hcl.InitialPos)
	if diags.HasErrors() {
		return Target{}, fmt.Errorf("invalid address %q: %s", s, diags[0].Detail)
	}
	if len(trav) < 2 || len(trav) > 3 {
		return Target{}, fmt.Errorf("invalid address %q: want KIND.NAME or KIND.NAME[KEY]", s)
	}
	kind := trav.RootName()
	if !IsKind(kind) {
		return Target{}, fmt.Errorf("invalid address %q: %q is not a resource kind (%s)", s, kind, strings.Join(Kinds, ", "))
	}
	attr, ok := trav[1].(hcl.TraverseAttr)
	if !ok {
		return Target{}, fmt.Errorf("invalid address %q: want KIND.NAME", s)
	}
	t := Target{Resource: Resource{Kind: kind, Name: attr.Name}, AllKeys: true}
	if len(trav) == 3 {
		idx, ok := trav[2].(hcl.TraverseIndex)
		if !ok {
			return Target{}, fmt.Errorf("invalid address %q: want an index in brackets", s)
		}
		t.AllKeys = false
		switch idx.Key.Type() {
		case cty.Number:
			bf := idx.Key.AsBigFloat()
			i, acc := bf.Int64()
			if acc != 0 || i < 0 {
				return Target{}, fmt.Errorf("invalid address %q: index must be a non-negative whole number", s)
			}
			t.Key = IntKey(int(i))
		case cty.String:
			t.Key = StringKey(idx.Key.AsString())
		default:
			return Target{}, fmt.Errorf("invalid address %q: index must be a number or a string", s)
		}
	}
	return t, nil
}

// ParseInstance parses an instance address (as state list prints them).
func ParseInstance(s string) (Instance, error) {
	// The common KIND.NAME without an index, without HCL's traversal parser
	// (a state of 10,000 resources parses 10,000 addresses).
	if kind, name, ok := strings.Cut(s, "."); ok && IsKind(kind) && hclsyntax.ValidIdentifier(name) {
		return Resource{Kind: kind, Name: name}.Instance(NoKey), nil
	}
	t, err := ParseTarget(s)
	if err != nil {
		return Instance{}, err
	}
	return t.Resource.Instance(t.Key), nil
}
