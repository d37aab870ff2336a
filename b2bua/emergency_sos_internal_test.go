package b2bua

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// sosInvite is an INVITE to ruri with To to, from the source's own Via.
func sosInvite(ruri, to string) []byte {
	return []byte("INVITE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bKsos1\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:phone@203.0.113.9>;tag=abc\r\n" +
		"To: " + to + "\r\n" +
		"Call-ID: sos-1@203.0.113.9\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:phone@203.0.113.9:5060>\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// The gate's raw reading of an INVITE (rawEmergency) agrees with the
// parsed one calls are taken by (dialledBy), and dialledBy routes each
// form as its emergency number: a service URN, a SIP URI of a number, a
// tel: URI (RFC 3966) cleaned of its "+", separators and parameters. A
// tel: Request-URI of another number is no emergency call, whatever To
// says (admit answers 416).
func TestRawEmergencyAgreesWithDialled(t *testing.T) {
	e := topology.Emergency{Numbers: []string{"911", "933"}}
	cases := []struct {
		ruri, to  string
		emergency bool
		callee    string
		service   string
	}{
		{"urn:service:sos", "<urn:service:sos>", true, "911", "urn:service:sos"},
		{"urn:service:sos.ambulance", "<sip:911@x>", true, "911", "urn:service:sos.ambulance"},
		{"URN:SERVICE:SOS.Police", "<urn:service:sos.police>", true, "911", "urn:service:sos.police"},
		{"sip:+9-1-1@10.0.0.1", "<sip:100@10.0.0.1>", true, "+9-1-1", ""},
		{"sip:911@10.0.0.1", "<sip:911@10.0.0.1>", true, "911", ""},
		{"sip:933;phone-context=+1@10.0.0.1;user=phone", "<sip:933@10.0.0.1>", true, "933;phone-context=+1", ""},
		{"sip:100@10.0.0.1", "<urn:service:sos.fire>;tag=x", true, "911", "urn:service:sos.fire"},
		{"sip:100@10.0.0.1", "urn:service:sos", true, "911", "urn:service:sos"},
		{"sip:100@10.0.0.1", "\"Emergency\" <sips:+933@10.0.0.1>", true, "933", ""},
		{"sip:100@10.0.0.1", "<sip:100@10.0.0.1>", false, "100", ""},
		{"urn:service:counseling", "<urn:service:counseling>", false, "", ""},
		{"urn:service:sosx", "<urn:service:sos>", false, "", ""},
		{"urn:service:sos.", "<urn:service:sos>", false, "", ""},
		{"urn:service:sos..police", "<urn:service:sos>", false, "", ""},
		{"tel:911", "<tel:911>", true, "911", ""},
		{"tel:+15551230000", "<tel:911>", false, "", ""},
		{"TEL:+9-1-1;phone-context=+1", "<tel:+9-1-1;phone-context=+1>", true, "911", ""},
		{"tel:933", "<urn:service:sos>", true, "933", "urn:service:sos"},
		{"sip:100@10.0.0.1", "<tel:933;phone-context=+1>;tag=x", true, "933", ""},
		{"sip:100@10.0.0.1", "tel:(9)11", true, "911", ""},
		{"tel:+15551230000", "<urn:service:sos>", false, "", ""},
		{"sip:100@10.0.0.1", "<tel:+15551230000>", false, "100", ""},
		{"tel:9111", "<tel:9111>", false, "", ""},
	}
	for _, tc := range cases {
		data := sosInvite(tc.ruri, tc.to)
		if got := rawEmergency(e, data); got != tc.emergency {
			t.Errorf("%s to %s: rawEmergency %v, want %v", tc.ruri, tc.to, got, tc.emergency)
		}
		msg, err := sip.ParseMessage(data)
		if err != nil {
			t.Fatalf("%s: %v", tc.ruri, err)
		}
		d := dialledBy(e, msg.(*sip.Request))
		if d.emergency != tc.emergency || d.emergency && (d.callee != tc.callee || d.service != tc.service) {
			t.Errorf("%s to %s: dialled %+v, want emergency %v callee %q service %q", tc.ruri, tc.to, d, tc.emergency, tc.callee, tc.service)
		}
		if rawEmergency(topology.Emergency{}, data) || dialledBy(topology.Emergency{}, msg.(*sip.Request)).emergency {
			t.Errorf("%s: emergency without emergency numbers", tc.ruri)
		}
	}
}

// In a zone in observe mode, an outsider's emergency INVITE that the
// outsider budgets refuse is let in within the emergency budget (per
// source, per prefix, all together), and no further; any other request
// beyond the outsider budgets is still dropped. An enforcing zone lets no
// outsider's emergency INVITE in, and a peer's never draws on a budget.
func TestGateEmergencyBudget(t *testing.T) {
	peers := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	cfg := &Config{Emergency: topology.Emergency{Numbers: []string{"911"}}, Zones: []topology.Zone{
		{Policy: policy.Zone{Name: "observed", Mode: policy.ModeObserve, Peers: peers}, Outsiders: topology.RefusalDrop},
		{Policy: policy.Zone{Name: "enforced", Mode: policy.ModeEnforce, Peers: peers}, Outsiders: topology.RefusalDrop}}}
	s := &Server{reg: newRegistry(), trunks: newTrunkSet(), outsiders: newOutsiderTallies(), events: newEventFolder(0),
		sosBudget: newOutsiderBudget(emergencyOutsiderLimits)}
	s.rules.Store(newRules(cfg))
	s.budget.Store(newOutsiderBudget(topology.Limits{OutsiderRate: 1e-9, SourceRate: 1e-9, PrefixRate: 1e-9}))
	local := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5060}
	pass := func(zn, from string, data []byte) bool {
		g := s.gate(&zone{name: zn, udp: map[string]*net.UDPConn{}})
		props := sip.TransportReadProps{Transport: "udp", LocalAddr: local,
			RemoteAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(from), 5060))}
		out, err := g(props, data)
		return err == nil && out != nil
	}
	sos := sosInvite("urn:service:sos", "<urn:service:sos>")
	plain := sosInvite("sip:100@10.0.0.1", "<sip:100@10.0.0.1>")
	steps := []struct {
		what, zone, from string
		data             []byte
		want             bool
	}{
		{"an outsider's first request (the outsider budgets' burst)", "observed", "203.0.113.9", plain, true},
		{"a call beyond the outsider budgets", "observed", "203.0.113.9", plain, false},
		{"an emergency call beyond them", "observed", "203.0.113.9", sos, true},
		{"the same source's second emergency call", "observed", "203.0.113.9", sos, false},
		{"a neighbour's emergency call by To", "observed", "203.0.113.10", sosInvite("sip:100@x", "<sip:911@x>"), true},
		{"a third from the /24", "observed", "203.0.113.11", sos, false},
		{"an emergency OPTIONS", "observed", "198.51.100.1", []byte(strings.Replace(string(sos), "INVITE", "OPTIONS", 2)), false},
		{"an outsider's emergency call into an enforcing zone", "enforced", "198.51.100.2", sos, false},
		{"a peer's, all budgets spent", "enforced", "10.1.2.3", sos, true},
	}
	for _, st := range steps {
		if got := pass(st.zone, st.from, st.data); got != st.want {
			t.Errorf("%s: let in %v, want %v", st.what, got, st.want)
		}
	}
	// The site's emergency budget: 5 a second, 2 spent above.
	got := 0
	for i := range 10 {
		if pass("observed", netip.AddrFrom4([4]byte{192, 0, byte(i), 1}).String(), sos) {
			got++
		}
	}
	if got != int(emergencyOutsiderLimits.OutsiderRate)-2 {
		t.Errorf("emergency calls from ten prefixes: %d let in, want the site's last %d", got, int(emergencyOutsiderLimits.OutsiderRate)-2)
	}
}
