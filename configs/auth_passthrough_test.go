package configs

import (
	"strings"
	"testing"
)

// auth_passthrough is on by default for a route without auth, off for a
// route with auth (which answers challenges itself), may be turned off,
// and is an error set to true beside auth.
func TestAuthPassthrough(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bool
		err        string
	}{
		{"default without auth", ``, true, ""},
		{"off", `auth_passthrough = false`, false, ""},
		{"on", `auth_passthrough = true`, true, ""},
		{"default with auth", "auth {\nusername = \"clinic\"\npassword_env = \"HOME\"\n}", false, ""},
		{"off with auth", "auth_passthrough = false\nauth {\nusername = \"clinic\"\npassword_env = \"HOME\"\n}", false, ""},
		{"on with auth", "auth_passthrough = true\nauth {\nusername = \"clinic\"\npassword_env = \"HOME\"\n}", false,
			`auth_passthrough with auth`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := `
zone "pbx" {
  listen = ["udp://127.0.0.1:5070"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "staff" {
  listen = ["udp://127.0.0.1:5060"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "staff-out" {
  from   = "staff"
  to     = "pbx"
  target = "sip:127.0.0.1:5080"
  ` + tc.body + `
}
media { address = "127.0.0.1" }
`
			cfg, diags := LoadBytes("t.hcl", []byte(src), LoadOptions{BaseDir: t.TempDir()})
			if tc.err != "" {
				if cfg != nil || !strings.Contains(diags.Error(), tc.err) {
					t.Fatalf("want error %q, got loaded=%v:\n%s", tc.err, cfg != nil, diags)
				}
				return
			}
			if cfg == nil {
				t.Fatalf("not loaded:\n%s", diags)
			}
			if got := cfg.Routes[0].AuthPassthrough; got != tc.want {
				t.Errorf("AuthPassthrough = %v, want %v", got, tc.want)
			}
		})
	}
}
