package b2bua_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// Reload changes the rules new calls get; a call already up keeps its own
// rules and its record names them; what is bound at Start cannot change.
func TestReload(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)

	cfg := l.cfg
	cfg.PolicyHash = "sha256:reloaded"
	cfg.Zones = slices.Clone(cfg.Zones)
	if cfg.Zones[0].Policy.Name != "pbx" {
		t.Fatalf("lab zone 0 is %q", cfg.Zones[0].Policy.Name)
	}
	cfg.Zones[0].Policy.Peers = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if err := l.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if h := l.srv.PolicyHash(); h != "sha256:reloaded" {
		t.Fatalf("policy hash after reload %q", h)
	}

	// A new call from 127.0.0.1 is now outside the PBX zone's peers.
	_, err := l.callOut(ctx, sim.CallOptions{})
	wantRejected(t, err, 403)

	// The call that was up goes on, under the rules it started with.
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	calls := l.sink.waitCalls(t, 1)
	if old := calls[0]; len(calls) != 1 || old.Disposition != compliance.DispositionAnswered || old.PolicyHash != "sha256:test" {
		t.Errorf("the call up before the reload: %+v", old)
	}
	// The refused one is no call: the PBX zone's outsider tally counts it,
	// under the new policy.
	if tally := l.outsiderTally(t, "pbx"); tally.Refused != 1 || tally.Methods["INVITE"] != 1 {
		t.Errorf("the INVITE after the reload: tally %+v", tally)
	}
	for _, e := range l.sink.conns() {
		if e.Event == compliance.EventOutsiders && e.PolicyHash != "sha256:reloaded" {
			t.Errorf("outsiders record under %q", e.PolicyHash)
		}
	}

	// Changes that need a restart are refused, and change nothing.
	moved := l.cfg
	moved.PolicyHash = "sha256:moved"
	moved.Zones = slices.Clone(moved.Zones)
	moved.Zones[1].Listen = []topology.Listener{{Transport: policy.TransportTLS, Addr: netip.MustParseAddrPort("127.0.0.1:1")}}
	ports := l.cfg
	ports.Media.PortMin = 31000
	fewer := l.cfg
	fewer.Zones = fewer.Zones[:1]
	for name, bad := range map[string]b2bua.Config{"listeners": moved, "media ports": ports, "zones": fewer} {
		if err := l.srv.Reload(bad); err == nil || !strings.Contains(err.Error(), "restart") {
			t.Errorf("%s changed: reload error %v, want one asking for a restart", name, err)
		}
	}
	if h := l.srv.PolicyHash(); h != "sha256:reloaded" {
		t.Errorf("a refused reload changed the rules: %q", h)
	}
}
