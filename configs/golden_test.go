package configs

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testOpts loads with a fixed BaseDir, a file system on which every file
// exists unless its path says "missing", and CARRIER_PASSWORD set.
func testOpts() LoadOptions {
	return LoadOptions{
		BaseDir:    "/etc/parapet",
		FileExists: func(p string) bool { return !strings.Contains(p, "missing") },
		LookupEnv: func(k string) (string, bool) {
			if k == "CARRIER_PASSWORD" {
				return "not-a-real-secret", true
			}
			return "", false
		},
	}
}

func hclFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no testdata/%s/*.hcl files", dir)
	}
	return files
}

// checkGolden compares got with the golden file next to path, or rewrites it
// under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	golden := strings.TrimSuffix(path, ".hcl") + ".golden"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./configs -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s\n--- got\n%s--- want\n%s", path, golden, got, want)
	}
}

// TestGoodGolden loads every testdata/good file: no errors, and the
// effective configuration in canonical JSON equals the golden file.
func TestGoodGolden(t *testing.T) {
	for _, path := range hclFiles(t, "good") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, diags := Load(filepath.ToSlash(path), testOpts())
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("unexpected errors:\n%s", diags.Errors().Error())
			}
			b, err := canonicalJSON(cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, path, append(b, '\n'))
		})
	}
}

// TestBadGolden loads every testdata/bad file: a nil configuration, and
// exactly the diagnostics of the golden file, one String() per line, so the
// golden files pin summaries, details and positions.
func TestBadGolden(t *testing.T) {
	for _, path := range hclFiles(t, "bad") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, diags := Load(filepath.ToSlash(path), testOpts())
			if !diags.HasErrors() {
				t.Errorf("no error reported; diagnostics:\n%s", diags.Error())
			}
			if cfg != nil {
				t.Error("configuration returned despite errors")
			}
			var b strings.Builder
			for _, d := range diags {
				b.WriteString(d.String())
				b.WriteByte('\n')
			}
			checkGolden(t, path, []byte(b.String()))
		})
	}
}
