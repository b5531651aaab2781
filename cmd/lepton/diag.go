package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// writeDiag prints one diagnostic the way Terraform does (summary, location,
// source snippet, detail) with the column added to the location, as
// FILE:LINE:COLUMN, so editors and CI logs can jump to it.
func writeDiag(w io.Writer, files map[string]*hcl.File, width uint, color bool, d *hcl.Diagnostic) {
	var buf bytes.Buffer
	hcl.NewDiagnosticTextWriter(&buf, files, width, color).WriteDiagnostic(d)
	out := buf.String()
	if s := d.Subject; s != nil {
		at := fmt.Sprintf("  on %s:%d:%d", s.Filename, s.Start.Line, s.Start.Column)
		out = strings.Replace(out, fmt.Sprintf("  on %s line %d", s.Filename, s.Start.Line), at, 1)
	}
	io.WriteString(w, out)
}
