package planner

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/leptonml/lepton/lang"
	"github.com/leptonml/lepton/providers"
)

// errSubject is where a provider's plan error points: at the argument it
// names (providers.ArgError), as far as the block's native syntax shows it,
// or at the block's header.
func errSubject(rb *lang.ResourceBlock, err error) *hcl.Range {
	rng := rb.DeclRange
	body, ok := rb.Body.(*hclsyntax.Body)
	path := providers.ArgPath(err)
	for i := 0; ok && i < len(path); i++ {
		name := path[i]
		if a, found := body.Attributes[name]; found {
			// An argument set with an expression: point at its value.
			rng = a.Expr.Range()
			break
		}
		ok = false
		for _, b := range body.Blocks {
			if b.Type == name {
				rng, body, ok = b.DefRange(), b.Body, true
				break
			}
		}
	}
	return &rng
}

// addWarnings shows a provider's plan warnings, each at its argument.
func (r *run) addWarnings(rb *lang.ResourceBlock, address string, ws []error) {
	for _, w := range ws {
		r.addDiags(hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: address, Detail: w.Error(), Subject: errSubject(rb, w)}})
	}
}
