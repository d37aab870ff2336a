package configs

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadBytes feeds arbitrary bytes to the loader: it must never panic,
// and a configuration comes back exactly when there is no error.
func FuzzLoadBytes(f *testing.F) {
	_, lab := LabDefault()
	f.Add(lab)
	for _, pattern := range []string{"testdata/*/*.hcl", "examples/*.hcl"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	opts := LoadOptions{
		BaseDir:    "/fuzz",
		FileExists: func(string) bool { return true },
		LookupEnv:  func(string) (string, bool) { return "", false },
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := LoadBytes("fuzz.hcl", src, opts)
		if (cfg != nil) == diags.HasErrors() {
			t.Fatalf("cfg = %v with diagnostics:\n%s", cfg, diags.Error())
		}
		if cfg != nil {
			if p, err := cfg.Policy(fakeTrust(cfg)); err != nil || p.Hash == "" {
				t.Fatalf("configuration without a policy hash: %v", err)
			}
		}
		for _, d := range diags {
			if d.Summary == "" {
				t.Fatalf("diagnostic without summary: %#v", d)
			}
		}
		diags.Format(io.Discard)
	})
}
