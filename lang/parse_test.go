package lang

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// parseCases are files whose cut points fall in every awkward place: inside
// heredocs, comments and nested blocks, after a top-level attribute, with CRLF
// line ends, and with errors.
var parseCases = map[string]string{
	"blocks": genBlocks(40),
	"heredoc": `dataset "a" {
  description = <<EOT
}
dataset "fake" {
}
EOT
}
dataset "b" {
  source { inline = { x = [1] } }
}
`,
	"comment": `/*
}
dataset "inside" {
}
*/
dataset "a" {
}
# }
dataset "b" {
}
`,
	"nested": `dataset "a" {
  source {
    inline = { x = [1] }
}
dataset "b" {
}
}
dataset "c" {
}
`,
	"attributes": "x = 1\n}\ny = {\n}\nx = 2\ndataset \"a\" {\n}\n",
	"crlf":       strings.ReplaceAll(genBlocks(10), "\n", "\r\n"),
	"error":      genBlocks(5) + "dataset \"bad\" {\n  x = \n}\n" + genBlocks(5),
	"unclosed":   genBlocks(5) + "dataset \"bad\" {\n",
	"blank":      "dataset \"a\" {\n}\n\n\n   \ndataset \"b\" {\n}\n",
}

func genBlocks(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dataset \"d%d\" {\n", i)
		if i%10 == 9 {
			fmt.Fprintf(&b, "  depends_on = [dataset.d%d]\n", i-1)
		}
		fmt.Fprintf(&b, "  source {\n    inline = {\n      x = [%d, 2, 3]\n    }\n  }\n}\n\n", i)
	}
	return b.String()
}

// TestParsePiecesMatchesOneParse: for every piece size, the joined parse is
// the single parse, field for field, diagnostics included.
func TestParsePiecesMatchesOneParse(t *testing.T) {
	examples, _ := filepath.Glob("../examples/*/*.lep.hcl")
	cases := map[string]string{}
	for k, v := range parseCases {
		cases[k] = v
	}
	for _, e := range examples {
		b, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		cases[e] = string(b)
	}
	for name, src := range cases {
		for _, size := range []int{1, 7, 40, 100, 1000, 1 << 20} {
			t.Run(fmt.Sprintf("%s/%d", name, size), func(t *testing.T) {
				checkPieces(t, []byte(src), size)
			})
		}
	}
}

func checkPieces(t *testing.T, src []byte, size int) {
	t.Helper()
	want, wantDiags := hclsyntax.ParseConfig(src, "f.lep.hcl", hcl.InitialPos)
	got, gotDiags := parsePieces(src, "f.lep.hcl", size)
	if !reflect.DeepEqual(got.Body, want.Body) {
		t.Fatalf("bodies differ for size %d:\n%s", size, src)
	}
	if string(got.Bytes) != string(want.Bytes) {
		t.Fatalf("bytes differ")
	}
	if !reflect.DeepEqual(gotDiags, wantDiags) {
		t.Fatalf("diagnostics differ: %v vs %v", gotDiags, wantDiags)
	}
	if got.Nav.(interface{ ContextString(int) string }).ContextString(len(src)/2) != want.Nav.(interface{ ContextString(int) string }).ContextString(len(src)/2) {
		t.Fatalf("navigation differs")
	}
}

func TestCutTopLevel(t *testing.T) {
	src := []byte(genBlocks(30))
	pieces := cutTopLevel(src, 200)
	if len(pieces) < 5 {
		t.Fatalf("%d pieces, want many", len(pieces))
	}
	next := 0
	for _, p := range pieces {
		if p.start.Byte != next {
			t.Fatalf("piece starts at %d, want %d", p.start.Byte, next)
		}
		line := 1 + strings.Count(string(src[:p.start.Byte]), "\n")
		if p.start.Line != line || p.start.Column != 1 {
			t.Fatalf("piece at byte %d has position %v, want line %d column 1", p.start.Byte, p.start, line)
		}
		next = p.end
	}
	if next != len(src) {
		t.Fatalf("pieces end at %d of %d", next, len(src))
	}
}

// FuzzParsePieces: whatever the text and piece size, the joined parse is the
// single parse.
func FuzzParsePieces(f *testing.F) {
	for _, src := range parseCases {
		f.Add(src, uint16(30))
	}
	f.Fuzz(func(t *testing.T, src string, size uint16) {
		checkPieces(t, []byte(src), int(size))
	})
}
