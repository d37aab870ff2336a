package main

import (
	"go/build"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestImportDirection enforces the package graph: policy is pure,
// configs is the only importer of hcl, certs and media import nothing of
// parapet's, b2bua never reads config files or certificates itself.
// internal/peers, which drives real SIP peers and captures for tests,
// imports only the standard library and only test code imports it: no
// package lists it below, and only audit's and cmd/parapet's tests may.
func TestImportDirection(t *testing.T) {
	const mod = "github.com/parapet-sbc/parapet/"
	allowed := map[string][]string{
		"policy":     {},
		"media":      {},
		"certs":      {},
		"configs":    {"policy"},
		"compliance": {"policy"},
		// Reports read records; audit judges captures with policy, reads
		// their SDP with media's parser and renders the same reports.
		"compliance/report": {"policy", "compliance"},
		"audit":             {"policy", "compliance", "compliance/report", "media"},
		"b2bua":             {"policy", "media", "compliance"},
		"b2bua/sim":         {},
		"internal/peers":    {},
		// The binary wires everything, but reads HCL only through configs.
		"cmd/parapet": {"policy", "media", "certs", "configs", "compliance", "compliance/report", "audit", "b2bua", "b2bua/sim"},
	}
	// The packages whose tests drive real peers through internal/peers.
	peersUsers := []string{"audit", "cmd/parapet"}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for pkg, ok := range allowed {
		p, err := build.ImportDir(filepath.Join(root, pkg), 0)
		if err != nil {
			t.Fatalf("%s: %v", pkg, err)
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, mod) && !slices.Contains(ok, strings.TrimPrefix(imp, mod)) {
				t.Errorf("%s imports %s; allowed: %v", pkg, imp, ok)
			}
			if strings.HasPrefix(imp, "github.com/hashicorp/hcl") && pkg != "configs" {
				t.Errorf("%s imports %s: only configs may", pkg, imp)
			}
			if pkg == "policy" && !isStdlib(imp) {
				t.Errorf("policy imports %s: policy uses the standard library only", imp)
			}
			if (pkg == "certs" || pkg == "internal/peers") && !isStdlib(imp) {
				t.Errorf("%s imports %s: %s uses the standard library only", pkg, imp, pkg)
			}
		}
		for _, imp := range slices.Concat(p.TestImports, p.XTestImports) {
			if imp == mod+"internal/peers" && !slices.Contains(peersUsers, pkg) {
				t.Errorf("%s's tests import %s; allowed in the tests of %v", pkg, imp, peersUsers)
			}
		}
		if pkg == "policy" {
			for _, banned := range []string{"os", "net", "net/http", "log", "log/slog", "io", "sync", "os/exec"} {
				if slices.Contains(p.Imports, banned) {
					t.Errorf("policy imports %s: policy does no I/O", banned)
				}
			}
		}
	}
}

func isStdlib(imp string) bool { return !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") }
