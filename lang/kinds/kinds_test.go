package kinds_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/leptonml/lepton/lang/kinds"
)

// TestNoKindSwitchesOutsideKinds: a kind's behaviour lives in its package
// (lang/kinds/NAME) and in the providers that implement it, reached through
// interfaces. Anywhere else, code that compares with a kind's name (a
// switch case, == or !=, or a lookup by a literal kind name) is how kinds
// leak into the planner, lang and the CLI, and what this test refuses.
// A comparison counts when its other side, or the switch's tag, is about a
// kind (an expression naming Kind or kind): "endpoint" is also a backend
// setting's name. Providers may name the kinds they implement.
//
// knownOffenders are the places still to move behind interfaces; the test
// fails on any other, and on an entry that no longer offends.
var knownOffenders = map[string]bool{}

func TestNoKindSwitchesOutsideKinds(t *testing.T) {
	names := map[string]bool{}
	for _, k := range kinds.All() {
		names[k.Name] = true
	}
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var found []string
	seenOffenders := map[string]bool{}
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if path == root {
				return nil
			}
			if rel == "lang/kinds" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "providers/") {
			return nil
		}
		aboutKind := func(e ast.Expr) bool {
			var b strings.Builder
			ast.Inspect(e, func(n ast.Node) bool {
				if id, ok := n.(*ast.Ident); ok {
					b.WriteString(id.Name + " ")
				}
				return true
			})
			ids := strings.ToLower(b.String())
			return strings.Contains(ids, "kind") || strings.Contains(ids, "schema")
		}
		isKind := func(e ast.Expr) bool {
			lit, ok := e.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return false
			}
			s, err := strconv.Unquote(lit.Value)
			return err == nil && names[s]
		}
		report := func(n ast.Node, what string) {
			if knownOffenders[rel] {
				seenOffenders[rel] = true
				return
			}
			found = append(found, fset.Position(n.Pos()).String()+": "+what)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SwitchStmt:
				if n.Tag == nil || !aboutKind(n.Tag) {
					return true
				}
				for _, st := range n.Body.List {
					for _, e := range st.(*ast.CaseClause).List {
						if isKind(e) {
							report(e, "switch on a kind name")
						}
					}
				}
			case *ast.BinaryExpr:
				if (n.Op == token.EQL || n.Op == token.NEQ) && ((isKind(n.X) && aboutKind(n.Y)) || (isKind(n.Y) && aboutKind(n.X))) {
					report(n, "comparison with a kind name")
				}
			case *ast.IndexExpr:
				if isKind(n.Index) && aboutKind(n.X) {
					report(n, "lookup by a kind name")
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("read %d Go files under %s: the walk missed the repository", files, root)
	}
	for _, f := range found {
		t.Error(f)
	}
	for rel := range knownOffenders {
		if !seenOffenders[rel] {
			t.Errorf("%s no longer names a kind: remove it from knownOffenders", rel)
		}
	}
}

func TestKindsAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range kinds.All() {
		if k.Name == "" || k.Config == nil {
			t.Errorf("kind %q has no name or config spec", k.Name)
		}
		if seen[k.Name] {
			t.Errorf("kind %q listed twice", k.Name)
		}
		seen[k.Name] = true
		for attr, kind := range k.Refs {
			if _, ok := k.Config[attr]; !ok {
				t.Errorf("%s: reference argument %q is not an argument", k.Name, attr)
			}
			if !seen[kind] && kind != k.Name {
				found := false
				for _, o := range kinds.All() {
					found = found || o.Name == kind
				}
				if !found {
					t.Errorf("%s.%s takes unknown kind %q", k.Name, attr, kind)
				}
			}
		}
	}
}
