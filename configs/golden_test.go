package configs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

// fakeTrust gives every zone with TLS settings fingerprints derived from
// its name: a certificate, and one CA unless it verifies against the system
// roots (a cert_file without a ca_file).
func fakeTrust(c *Config) Trust {
	fp := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	out := Trust{}
	for _, z := range c.Zones {
		if z.TLS == nil {
			continue
		}
		zt := ZoneTrust{Cert: fp("cert " + z.Policy.Name)}
		if z.TLS.CAFile != "" || z.TLS.Lab() {
			zt.CAs = []string{fp("ca " + z.Policy.Name)}
		}
		out[z.Policy.Name] = zt
	}
	return out
}

// operational is what the canonical policy leaves out, in the golden files
// too, so that they pin defaults and path resolution.
func operational(c *Config) any {
	type zone struct {
		Name      string `json:"name"`
		Advertise string `json:"advertise"`
		CertFile  string `json:"cert_file,omitempty"`
		KeyFile   string `json:"key_file,omitempty"`
		CAFile    string `json:"ca_file,omitempty"`
	}
	out := struct {
		StateDir    string `json:"state_dir"`
		Zones       []zone `json:"zones"`
		MediaAddr   string `json:"media_address"`
		MediaAdv    string `json:"media_advertise"`
		Ports       [2]int `json:"media_ports"`
		Log         string `json:"compliance_log"`
		RotateBytes int64  `json:"rotate_bytes"`
		Admin       string `json:"admin_listen"`
	}{StateDir: c.StateDir, Ports: [2]int{c.Media.PortMin, c.Media.PortMax}, Log: c.Compliance.Log,
		RotateBytes: c.Compliance.RotateBytes, Admin: c.Admin.Listen}
	if c.Media.Address.IsValid() {
		out.MediaAddr = c.Media.Address.String()
	}
	if c.Media.Advertise.IsValid() {
		out.MediaAdv = c.Media.Advertise.String()
	}
	for _, z := range c.Zones {
		oz := zone{Name: z.Policy.Name, Advertise: z.Advertise}
		if z.TLS != nil {
			oz.CertFile, oz.KeyFile, oz.CAFile = z.TLS.CertFile, z.TLS.KeyFile, z.TLS.CAFile
		}
		out.Zones = append(out.Zones, oz)
	}
	return out
}

// TestGoodGolden loads every testdata/good file: no errors, and the
// canonical policy (with fakeTrust) in indented JSON, followed by the
// operational settings it leaves out, equals the golden file.
func TestGoodGolden(t *testing.T) {
	for _, path := range hclFiles(t, "good") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, diags := Load(filepath.ToSlash(path), testOpts())
			if diags.HasErrors() || cfg == nil {
				t.Fatalf("unexpected errors:\n%s", diags.Errors().Error())
			}
			pol, err := cfg.Policy(fakeTrust(cfg))
			if err != nil {
				t.Fatal(err)
			}
			ops, err := json.MarshalIndent(operational(cfg), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got := append(pol.Indented(), "\n\n// not in the policy:\n"...)
			checkGolden(t, path, append(append(got, ops...), '\n'))
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
