package main

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

const modPath = "github.com/parapet-sbc/parapet/"

// moduleGraph is the package graph: for every package of the module with
// non-test code, the packages of the module it may import. Policy is pure,
// topology is the domain model (zones, routes, media sockets) as pure data,
// configs is the only importer of hcl, certs and media import nothing of
// parapet's, b2bua never reads config files or certificates itself. A new
// package must be listed here before it builds past this test.
var moduleGraph = map[string][]string{
	"policy":     {},
	"media":      {},
	"certs":      {},
	"topology":   {"policy"},
	"configs":    {"policy", "topology"},
	"compliance": {"policy"},
	// Reports read records; audit judges captures with policy, reads
	// their SDP with media's parser and renders the same reports.
	"compliance/report": {"policy", "compliance"},
	"audit":             {"policy", "compliance", "compliance/report", "media"},
	"b2bua":             {"policy", "topology", "media", "compliance"},
	// The simulated peers are an independent SIP and media stack: nothing
	// of parapet's, so a test through them checks parapet against them.
	"internal/sim":   {},
	"internal/peers": {},
	// The binary wires everything, but reads HCL only through configs.
	"cmd/parapet": {"policy", "topology", "media", "certs", "configs", "compliance", "compliance/report", "audit", "b2bua", "internal/sim"},
}

// thirdParty fences third-party modules to the packages that own them
// (non-test code; tests may reach further, as bench's do for bare pion).
var thirdParty = []struct {
	module string   // an import path or a path prefix ending in "/"
	only   []string // the packages of the module allowed to import it
}{
	{"github.com/hashicorp/hcl/", []string{"configs"}},
	{"github.com/pion/", []string{"media", "internal/sim"}},
	{"github.com/emiago/sipgo", []string{"b2bua", "internal/sim"}},
}

// stdlibOnly are the packages that import only the standard library
// (besides what moduleGraph allows them of parapet's).
var stdlibOnly = []string{"policy", "topology", "certs", "internal/peers"}

// peersUsers are the packages whose tests drive real peers through
// internal/peers; no other package's tests may import it.
var peersUsers = []string{"audit", "cmd/parapet"}

// policyBanned are the standard packages that would let policy do I/O.
var policyBanned = []string{"os", "net", "net/http", "log", "log/slog", "io", "sync", "os/exec"}

// TestImportDirection enforces the package graph and the third-party
// fences on every package of the module, found by walking its tree.
func TestImportDirection(t *testing.T) {
	pkgs := modulePackages(t)
	for pkg := range moduleGraph {
		if pkgs[pkg] == nil {
			t.Errorf("moduleGraph lists %s, which the walk did not find (of %d packages)", pkg, len(pkgs))
		}
	}
	for _, v := range importViolations(pkgs) {
		t.Error(v)
	}
}

// TestImportFences shows each fence failing on a package graph that
// breaks it, and holding on one that keeps it.
func TestImportFences(t *testing.T) {
	tests := []struct {
		name    string
		pkg     string
		imports []string
		tests   []string
		want    string // a substring of the one violation; "" for none
	}{
		{"media owns pion", "media", []string{"github.com/pion/srtp/v3"}, nil, ""},
		{"sim owns pion and sipgo", "internal/sim", []string{"github.com/pion/dtls/v3", "github.com/emiago/sipgo/sip"}, nil, ""},
		{"b2bua owns sipgo", "b2bua", []string{"github.com/emiago/sipgo", modPath + "media"}, nil, ""},
		{"pion outside media", "audit", []string{"github.com/pion/rtp"}, nil, "only media, internal/sim may"},
		{"pion in b2bua", "b2bua", []string{"github.com/pion/sdp/v3"}, nil, "only media, internal/sim may"},
		{"sipgo outside b2bua", "media", []string{"github.com/emiago/sipgo/sip"}, nil, "only b2bua, internal/sim may"},
		{"hcl outside configs", "cmd/parapet", []string{"github.com/hashicorp/hcl/v2"}, nil, "only configs may"},
		{"sim imports b2bua", "internal/sim", []string{modPath + "b2bua"}, nil, "internal/sim imports " + modPath + "b2bua"},
		{"b2bua imports sim", "b2bua", []string{modPath + "internal/sim"}, nil, "b2bua imports " + modPath + "internal/sim"},
		{"certs third-party", "certs", []string{"golang.org/x/crypto/ocsp"}, nil, "standard library only"},
		{"policy does I/O", "policy", []string{"os"}, nil, "policy does no I/O"},
		{"topology is a leaf", "topology", []string{modPath + "configs"}, nil, "topology imports " + modPath + "configs"},
		{"topology third-party", "topology", []string{"golang.org/x/exp/slices"}, nil, "standard library only"},
		{"unlisted package", "b2bua/phase", []string{"fmt"}, nil, "not in moduleGraph"},
		{"test-only package", "bench", nil, []string{"github.com/pion/srtp/v3", modPath + "internal/sim"}, ""},
		{"peers in b2bua's tests", "b2bua", nil, []string{modPath + "internal/peers"}, "allowed in the tests of"},
		{"peers in audit's tests", "audit", nil, []string{modPath + "internal/peers"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &build.Package{Imports: tc.imports, TestImports: tc.tests}
			if len(tc.imports) > 0 {
				p.GoFiles = []string{"x.go"}
			}
			got := importViolations(map[string]*build.Package{tc.pkg: p})
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("violations %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Errorf("violations %q, want one containing %q", got, tc.want)
			}
		})
	}
}

// modulePackages walks the module's tree and returns its packages by path
// relative to the module root.
func modulePackages(t *testing.T) map[string]*build.Package {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	pkgs := map[string]*build.Package{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		var noGo *build.NoGoError
		if errors.As(err, &noGo) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rel, err := filepath.Rel(root, path)
		pkgs[filepath.ToSlash(rel)] = p
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// importViolations checks every package against the fences, in a stable
// order, and says what each one that breaks them imports.
func importViolations(pkgs map[string]*build.Package) []string {
	names := make([]string, 0, len(pkgs))
	for name := range pkgs {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []string
	for _, pkg := range names {
		out = append(out, packageViolations(pkg, pkgs[pkg])...)
	}
	return out
}

// packageViolations checks one package's non-test imports against the
// graph and the fences, and its tests' imports against peersUsers.
func packageViolations(pkg string, p *build.Package) []string {
	var out []string
	ok, listed := moduleGraph[pkg]
	if !listed && len(p.GoFiles)+len(p.CgoFiles) > 0 {
		out = append(out, fmt.Sprintf("%s is not in moduleGraph: list the packages of the module it may import", pkg))
	}
	for _, imp := range p.Imports {
		out = append(out, importViolation(pkg, imp, ok, listed)...)
	}
	for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
		if imp == modPath+"internal/peers" && !slices.Contains(peersUsers, pkg) {
			out = append(out, fmt.Sprintf("%s's tests import %s; allowed in the tests of %v", pkg, imp, peersUsers))
		}
	}
	return out
}

// importViolation checks one non-test import of pkg, which may import ok
// of the module when it is listed in moduleGraph.
func importViolation(pkg, imp string, ok []string, listed bool) []string {
	var out []string
	if listed && strings.HasPrefix(imp, modPath) && !slices.Contains(ok, strings.TrimPrefix(imp, modPath)) {
		out = append(out, fmt.Sprintf("%s imports %s; allowed: %v", pkg, imp, ok))
	}
	for _, f := range thirdParty {
		within := imp == strings.TrimSuffix(f.module, "/") || strings.HasPrefix(imp, strings.TrimSuffix(f.module, "/")+"/")
		if within && !slices.Contains(f.only, pkg) {
			out = append(out, fmt.Sprintf("%s imports %s: only %s may", pkg, imp, strings.Join(f.only, ", ")))
		}
	}
	if slices.Contains(stdlibOnly, pkg) && !isStdlib(imp) && !strings.HasPrefix(imp, modPath) {
		out = append(out, fmt.Sprintf("%s imports %s: %s uses the standard library only", pkg, imp, pkg))
	}
	if pkg == "policy" && slices.Contains(policyBanned, imp) {
		out = append(out, fmt.Sprintf("policy imports %s: policy does no I/O", imp))
	}
	return out
}

func isStdlib(imp string) bool { return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") }
