package certs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fieldUse is one place the package's non-test code sets a tls.Config field:
// a key in a tls.Config literal, or an assignment such as cfg.MinVersion = v.
type fieldUse struct {
	field, function, pos string
}

// fieldUses walks the package's non-test source.
func fieldUses(t *testing.T, fields ...string) []fieldUse {
	t.Helper()
	want := map[string]bool{}
	for _, f := range fields {
		want[f] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var uses []fieldUse
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn := "(package level)"
			if fd, ok := decl.(*ast.FuncDecl); ok {
				fn = fd.Name.Name
			}
			note := func(id *ast.Ident) {
				if id != nil && want[id.Name] {
					uses = append(uses, fieldUse{id.Name, fn, fset.Position(id.Pos()).String()})
				}
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit: // tls.Config{Field: ...}
					if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "Config" {
						for _, elt := range n.Elts {
							if kv, ok := elt.(*ast.KeyValueExpr); ok {
								id, _ := kv.Key.(*ast.Ident)
								note(id)
							}
						}
					}
				case *ast.AssignStmt: // cfg.Field = ...
					for _, lhs := range n.Lhs {
						if sel, ok := lhs.(*ast.SelectorExpr); ok {
							note(sel.Sel)
						}
					}
				}
				return true
			})
		}
	}
	return uses
}

// The TLS floor is set in one function; nothing else in the package writes
// MinVersion, and nothing ever sets MaxVersion or KeyLogWriter.
func TestFloorSetInOneFunction(t *testing.T) {
	for _, u := range fieldUses(t, "MinVersion", "MaxVersion", "KeyLogWriter") {
		if u.field == "MinVersion" && u.function == "applyFloor" {
			continue
		}
		t.Errorf("%s: %s used in %s; only applyFloor may set MinVersion, and MaxVersion/KeyLogWriter are never set", u.pos, u.field, u.function)
	}
}

// Certificate verification can be skipped in exactly one place: ClientConfig,
// from the zone's VerifyPeer. No verification callbacks replace Go's checks.
func TestVerificationBypassInOnePlace(t *testing.T) {
	uses := fieldUses(t, "InsecureSkipVerify", "VerifyPeerCertificate")
	if len(uses) != 1 || uses[0].field != "InsecureSkipVerify" || uses[0].function != "ClientConfig" {
		t.Fatalf("verification bypasses: %+v; want only InsecureSkipVerify in ClientConfig", uses)
	}
	// And that one place reads the option and nothing else.
	src, err := os.ReadFile("zone.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), "InsecureSkipVerify: !z.verifyPeer,") {
		t.Error("ClientConfig should set InsecureSkipVerify from !z.verifyPeer only")
	}
}

// certs imports the standard library only.
func TestImportsStandardLibraryOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s; certs uses the standard library only", name, path)
			}
		}
	}
}
