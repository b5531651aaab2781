package dataset

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// validate checks what the spec cannot say: a dataset has one source block,
// which names exactly one kind of source.
func validate(body hcl.Body) hcl.Diagnostics {
	content, _, _ := body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "source"}}})
	var diags hcl.Diagnostics
	for i, b := range content.Blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate source block", Detail: "A dataset has exactly one source block.", Subject: b.DefRange.Ptr()})
			continue
		}
		sc, _, _ := b.Body.PartialContent(&hcl.BodySchema{
			Attributes: []hcl.AttributeSchema{{Name: "builtin"}, {Name: "file"}, {Name: "url"}, {Name: "object"}, {Name: "inline"}},
			Blocks:     []hcl.BlockHeaderSchema{{Type: "sql"}, {Type: "log"}},
		})
		var kinds []string
		for n := range sc.Attributes {
			kinds = append(kinds, n)
		}
		for _, bb := range sc.Blocks {
			kinds = append(kinds, bb.Type)
		}
		sort.Strings(kinds)
		switch len(kinds) {
		case 1:
		case 0:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing data source", Detail: "The source block must set exactly one of builtin, file, url, object, inline, or a sql or log block.", Subject: b.DefRange.Ptr()})
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Conflicting data sources", Detail: fmt.Sprintf("The source block sets %s; it must set exactly one.", strings.Join(kinds, " and ")), Subject: b.DefRange.Ptr()})
		}
	}
	return diags
}
