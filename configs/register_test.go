package configs

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A password_file must be readable by its owner only, as the pseudonym
// key; its path is resolved against the configuration's directory.
func TestPasswordFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permissions")
	}
	src := `
zone "pbx" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "out" {
  from   = "pbx"
  to     = "pbx"
  target = "sip:192.0.2.1"
  auth {
    username      = "clinic"
    password_file = "carrier.pass"
  }
  register {}
}
media { address = "127.0.0.1" }
`
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o640, false}, {0o644, false}} {
		dir := t.TempDir()
		p := filepath.Join(dir, "carrier.pass")
		if err := os.WriteFile(p, []byte("pw\n"), tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		cfg, diags := LoadBytes("t.hcl", []byte(src), LoadOptions{BaseDir: dir})
		if tc.ok != (cfg != nil) {
			t.Fatalf("mode %04o: loaded %v, diagnostics:\n%s", tc.mode, cfg != nil, diags)
		}
		if !tc.ok {
			if !strings.Contains(diags.Error(), "password_file readable by others") {
				t.Errorf("mode %04o: %s", tc.mode, diags)
			}
			continue
		}
		rt := cfg.Routes[0]
		if rt.Auth.PasswordFile != p || rt.Register == nil || rt.Register.AOR != "sip:clinic@192.0.2.1" {
			t.Errorf("mode %04o: auth %+v register %+v", tc.mode, rt.Auth, rt.Register)
		}
	}
}
