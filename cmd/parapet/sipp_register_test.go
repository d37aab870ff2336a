package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/peers"
)

const sippTrunkPassword = "sipp-Trunk-pw-7"

// SIPp as the carrier's registrar: parapet registers the trunk after a
// 401 challenge (SIPp verifies the digest), refreshes it before the 3 s
// grant runs out (SIPp waits 3 s at most), and unregisters at shutdown
// (Expires: 0, challenged too). The log records the registration and the
// unregistration, and never the password.
func TestSIPpRegistrar(t *testing.T) {
	requirePeers(t, "sipp")
	base := portBlock(t)
	reg := base + 1
	dir := t.TempDir()
	scenario := filepath.Join(dir, "registrar.xml")
	if err := os.WriteFile(scenario, []byte(strings.ReplaceAll(sippRegistrar, "PASSWORD", sippTrunkPassword)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sipp := exec.CommandContext(ctx, "sipp", "-sf", scenario, "-i", "127.0.0.1", "-p", fmt.Sprint(reg),
		"-m", "1", "-nostdin", "-trace_logs", "-trace_err", "-timeout", "50s", "-timeout_error")
	sipp.Dir = dir
	out := &strings.Builder{}
	sipp.Stdout, sipp.Stderr = out, out
	if err := sipp.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sipp.Wait() }()
	defer func() {
		if sipp.ProcessState == nil {
			sipp.Process.Kill()
			<-exited
		}
	}()
	if !poll(5*time.Second, func() bool { return udpBound(reg) }) {
		t.Fatalf("SIPp never bound its port:\n%s", peers.Tail(out.String(), 20))
	}

	p := startParapetTrunk(t, base, reg)
	waitFor(t, 15*time.Second, "SIPp to accept the refreshed registration", func() bool {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_logs.log"))
		for _, f := range logs {
			if b, _ := os.ReadFile(f); strings.Contains(string(b), "refreshed") {
				return true
			}
		}
		return false
	})
	rec := httptest.NewRecorder()
	metricsHandler(p.in.srv, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, m := range []string{`parapet_trunk_registered{route="trunk"} 1`,
		`parapet_trunk_registration_state{route="trunk",state="registered"} 1`,
		`parapet_trunk_registration_state{route="trunk",state="failed"} 0`} {
		if !strings.Contains(rec.Body.String(), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	recs := p.records(t) // stops parapet: it unregisters
	select {
	case err := <-exited:
		if err != nil {
			errs, _ := filepath.Glob(filepath.Join(dir, "*errors.log"))
			var el []byte
			for _, f := range errs {
				b, _ := os.ReadFile(f)
				el = append(el, b...)
			}
			t.Fatalf("sipp registrar: %v\n%s\n---- errors ----\n%s", err, peers.Tail(out.String(), 12), peers.Tail(string(el), 60))
		}
	case <-ctx.Done():
		t.Fatal("SIPp never saw the unregistration")
	}
	var states []string
	for _, r := range recs {
		if r.Conn == nil || r.Conn.Event != compliance.EventTrunkRegistration {
			continue
		}
		states = append(states, fmt.Sprintf("%s/%d", r.Conn.State, r.Conn.SIPStatus))
		if r.Conn.Route != "trunk" || r.Conn.Remote != fmt.Sprintf("127.0.0.1:%d", reg) {
			t.Errorf("record %+v", r.Conn)
		}
	}
	if strings.Join(states, ",") != "registered/200,unregistered/200" {
		t.Errorf("trunk records: %v", states)
	}
	if b, err := os.ReadFile(p.logPath); err != nil || strings.Contains(string(b), sippTrunkPassword) {
		t.Errorf("the compliance log holds the password (or cannot be read: %v)", err)
	}
}

// startParapetTrunk runs parapet with a pbx zone and a trunk zone, both
// UDP, and a route into the trunk that registers with the registrar at
// port reg (its password in a file).
func startParapetTrunk(t *testing.T, base, reg int) *parapetUnderTest {
	t.Helper()
	dir := t.TempDir()
	pki, err := certs.EnsureLab(filepath.Join(dir, "state", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "carrier.pass"), []byte(sippTrunkPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
state_dir = "state"
zone "pbx" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
zone "trunk" {
  listen = ["udp://127.0.0.1:%d"]
  peers  = ["127.0.0.0/8"]
  media { srtp = "allow" }
}
route "trunk" {
  from   = "pbx"
  to     = "trunk"
  target = "sip:127.0.0.1:%d"
  auth {
    username      = "clinic"
    password_file = "carrier.pass"
  }
  register {
    aor = "sip:clinic@carrier.sipp"
  }
}
media {
  address = "127.0.0.1"
  ports   = "%d-%d"
}
`, base+60, base+61, reg, base+70, base+99)
	return startParapetConfig(t, dir, pki, conf)
}

// sippRegistrar is a registrar for one registration (one Call-ID, as
// RFC 3261 section 10.2 has a UA keep): each REGISTER is challenged with
// 401 and its digest verified (a wrong one fails the scenario); the first
// is granted 3 s, the refresh must come within those 3 s and is granted
// an hour, and the last must remove the binding (Expires: 0).
var sippRegistrar = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="registrar: 401, a 3 s grant, a refresh, an unregistration">
  <recv request="REGISTER"/>
  <send>` + sippChallenge + `</send>
  <recv request="REGISTER">
    <action><verifyauth assign_to="auth1" username="clinic" password="PASSWORD"/></action>
  </recv>
  <nop hide="true" test="auth1" next="ok1"/>
  <recv request="NEVER" timeout="10"/>
  <label id="ok1"/>
  <send>` + sippGrant("3") + `</send>

  <recv request="REGISTER" timeout="3000"/>
  <send>` + sippChallenge + `</send>
  <recv request="REGISTER">
    <action><verifyauth assign_to="auth2" username="clinic" password="PASSWORD"/></action>
  </recv>
  <nop hide="true" test="auth2" next="ok2"/>
  <recv request="NEVER" timeout="10"/>
  <label id="ok2"/>
  <send>` + sippGrant("3600") + `</send>
  <nop><action><log message="refreshed"/></action></nop>

  <recv request="REGISTER">
    <action><ereg regexp="^[[:space:]]*0[[:space:]]*$" search_in="hdr" header="Expires:" check_it="true" assign_to="zero"/>
      <log message="unregistering: Expires [$zero]"/></action>
  </recv>
  <send>` + sippChallenge + `</send>
  <recv request="REGISTER">
    <action><verifyauth assign_to="auth3" username="clinic" password="PASSWORD"/></action>
  </recv>
  <nop hide="true" test="auth3" next="ok3"/>
  <recv request="NEVER" timeout="10"/>
  <label id="ok3"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=reg[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
</scenario>
`

const sippChallenge = `<![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=reg[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="carrier.sipp", nonce="[pid]n[call_number]x[clock_tick]", algorithm=MD5
Content-Length: 0

]]>`

func sippGrant(seconds string) string {
	return `<![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=reg[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Contact:];expires=` + seconds + `
Content-Length: 0

]]>`
}
