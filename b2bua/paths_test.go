package b2bua_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

func wantRejected(t *testing.T, err error, status int) *sim.Rejected {
	t.Helper()
	var rej *sim.Rejected
	if !errors.As(err, &rej) || rej.Status != status {
		t.Fatalf("err = %v, want %d", err, status)
	}
	return rej
}

// A carrier that answers an SRTP offer with plain RTP gets its leg torn
// down; the caller gets 488.
func TestCarrierAnswersPlainRTP(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Plain: true}})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	rej := wantRejected(t, err, 488)
	if !strings.Contains(rej.Warning, "requires SRTP") {
		t.Errorf("warning %q does not say why", rej.Warning)
	}
	callee := incoming(t, l.carrier)
	waitEnded(t, "carrier leg torn down", callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 488 {
		t.Errorf("record %s %d", c.Disposition, c.SIPStatus)
	}
	if d := decision(c, policy.RuleAnswerSRTPRequired); d == nil {
		t.Errorf("decisions %+v", c.Decisions)
	}
}

// An answer with a crypto tag parapet did not offer is refused (baresip
// answers like this when it accepts none of the offered suites).
func TestAnswerWithUnofferedTag(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{WrongTag: true}})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 488)
	c := l.sink.waitCalls(t, 1)[0]
	if d := decision(c, policy.RuleAnswerNotOffered); d == nil {
		t.Errorf("decisions %+v", c.Decisions)
	}
}

// TLS 1.0 and 1.1 handshakes are refused and recorded with the version the
// client offered and its SNI.
func TestLegacyTLSRefusedAndRecorded(t *testing.T) {
	l := newLab(t, labOptions{})
	dial := func(v uint16) {
		t.Helper()
		conn, err := tls.Dial("tcp", l.carrierTLS.String(), &tls.Config{
			MinVersion: tls.VersionTLS10, MaxVersion: v, ServerName: "sbc.lab.invalid", InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatalf("TLS version %x accepted", v)
		}
	}
	dial(tls.VersionTLS10)
	poll(5*time.Second, func() bool { return len(l.sink.conns()) >= 1 })
	evs := l.sink.conns()
	if len(evs) < 1 {
		t.Fatal("no connection event recorded")
	}
	e := evs[0]
	if e.Event != compliance.EventTLSRefused || e.ClientMaxVersion != "TLS1.0" || e.SNI != "sbc.lab.invalid" || e.Zone != "carrier" {
		t.Errorf("event %+v", e)
	}
	if e.Decision == nil || e.Decision.Rule != policy.RuleTLSVersion {
		t.Errorf("decision %+v", e.Decision)
	}
	if !strings.HasPrefix(e.Remote, "127.0.0.1:") {
		t.Errorf("remote %q", e.Remote)
	}
	// More TLS 1.0 refusals from the same source within the interval are
	// folded instead of each writing a record; a TLS 1.1 attempt is another
	// kind, recorded at once.
	dial(tls.VersionTLS10)
	dial(tls.VersionTLS10)
	dial(tls.VersionTLS11)
	if !poll(5*time.Second, func() bool { return l.srv.Stats().TLSRefused >= 4 }) {
		t.Fatalf("the refusals were not counted: %+v", l.srv.Stats())
	}
	// The TLS 1.1 record is written at once; the TLS 1.0 ones, had they
	// not been folded, would have been written before it.
	if !poll(5*time.Second, func() bool {
		evs = l.sink.conns()
		return len(evs) > 0 && evs[len(evs)-1].ClientMaxVersion == "TLS1.1"
	}) {
		t.Fatalf("no record of the TLS 1.1 attempt: %+v", evs)
	}
	if evs := l.sink.conns(); len(evs) != 2 {
		t.Errorf("events %+v, want the TLS 1.0 one and the TLS 1.1 one", evs)
	}
	// At shutdown the folded count is written: every refusal accounted for.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n := map[string]uint64{}
	for _, e := range l.sink.conns() {
		n[e.ClientMaxVersion] += 1 + e.Suppressed
	}
	if n["TLS1.0"] != 3 || n["TLS1.1"] != 1 {
		t.Errorf("refusals accounted for in the records: %v, want TLS1.0 3 and TLS1.1 1", n)
	}
}

// A TLS 1.2 carrier works; its record says TLS1.2.
func TestTLS12CarrierCall(t *testing.T) {
	l := newLab(t, labOptions{parapetClient: func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 }})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	b := leg(c, compliance.RoleB)
	if b.TLS == nil || b.TLS.Version != "TLS1.2" || !strings.HasPrefix(b.TLS.CipherSuite, "TLS_ECDHE_") {
		t.Errorf("leg b tls %+v", b.TLS)
	}
}

// parapet refuses to send a call to a carrier whose certificate it cannot
// verify, and records why.
func TestCarrierCertificateNotTrusted(t *testing.T) {
	l := newLab(t, labOptions{parapetClient: func(c *tls.Config) { c.RootCAs = nil; c.ServerName = "" }})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 503)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || !strings.Contains(c.EndReason, "x509") {
		t.Errorf("record %s %q", c.Disposition, c.EndReason)
	}
	if d := decision(c, policy.RuleHandshakeFailed); d == nil {
		t.Errorf("decisions %+v", c.Decisions)
	}
	var ev *compliance.ConnEvent
	for _, e := range l.sink.conns() {
		if e.Event == compliance.EventTLSClientFailed {
			ev = e
		}
	}
	if ev == nil || ev.PeerCert == nil || ev.PeerCert.SHA256 == "" {
		t.Errorf("client handshake failure event %+v", ev)
	}
	if b := leg(c, compliance.RoleB); b == nil || control(b, policy.ControlTransmission) != policy.StatusNotApplicable {
		t.Errorf("callee leg after a failed handshake: %+v", b)
	}
}

// CANCEL from the caller propagates to the callee; the record says cancelled.
func TestCancelPropagates(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Ring: 10 * time.Second}})
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() { time.Sleep(300 * time.Millisecond); cancel() }() // the scenario: the caller gives up after 300 ms
	_, err := l.callOut(ctx, sim.CallOptions{})
	if err == nil {
		t.Fatal("call answered")
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionCancelled || c.SIPStatus != 487 {
		t.Errorf("record %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
}

// A callee that sends many provisional responses (here 40 × 180) is still
// answered: sipgo's WaitAnswer gives up after 10 responses, parapet goes on
// waiting. The caller gets one 180: repeats without SDP are not relayed.
func TestManyProvisionalResponses(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Ring: 400 * time.Millisecond, MoreRinging: 39}})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
	var ringing int
	for _, p := range caller.Provisional() {
		if strings.HasPrefix(p, "SIP/2.0 180") {
			ringing++
		}
	}
	if ringing != 1 {
		t.Errorf("the caller saw %d 180s, want the repeats folded into one: %q", ringing, caller.Provisional())
	}
}

// A callee failure is mapped back to the caller. The callee leg's record
// still carries the TLS handshake its INVITE and 486 crossed.
func TestCalleeBusy(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Status: 486}})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 486)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || c.SIPStatus != 486 {
		t.Errorf("record %s %d", c.Disposition, c.SIPStatus)
	}
	b := leg(c, compliance.RoleB)
	if b == nil || b.TLS == nil || b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified || b.Local == "" {
		t.Fatalf("callee leg lacks its TLS evidence: %+v", b)
	}
	for _, ctl := range []policy.Control{policy.ControlAuthentication, policy.ControlTransmission} {
		if got := control(b, ctl); got != policy.StatusSatisfied {
			t.Errorf("callee leg %s = %s: %+v", ctl, got, b.Controls)
		}
	}
}

// A carrier that refuses the connection: the caller gets 503, and the
// callee leg, on which nothing was sent, is judged not_applicable rather
// than violated.
func TestCarrierUnreachable(t *testing.T) {
	l := newLab(t, labOptions{})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	cfg := l.cfg
	cfg.Routes = append([]topology.Route{}, cfg.Routes...)
	cfg.Routes[0].Target.Port = port
	if err := l.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	_, err = l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 503)
	c := l.sink.waitCalls(t, 1)[0]
	b := leg(c, compliance.RoleB)
	if c.Disposition != compliance.DispositionFailed || b == nil {
		t.Fatalf("record %s %q, legs %+v", c.Disposition, c.EndReason, c.Legs)
	}
	for _, f := range b.Controls {
		if f.Status != policy.StatusNotApplicable {
			t.Errorf("unreached callee leg: %+v", b.Controls)
			break
		}
	}
	if len(b.Controls) != 3 {
		t.Errorf("unreached callee leg has %d findings, want 3", len(b.Controls))
	}
}

// A re-INVITE that downgrades SRTP on a require leg gets 488 and the call
// keeps its media; an acceptable re-INVITE is bridged to the other leg.
func TestReinvite(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)

	code, err := callee.Reinvite(ctx, true)
	if err != nil || code != 488 {
		t.Fatalf("downgrade re-INVITE: %d %v, want 488", code, err)
	}
	// The call goes on with SRTP.
	if err := callee.Send(ctx, 7000, 20, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitIntact(ctx, packets+20); err != nil {
		t.Fatalf("media stopped after a refused downgrade: %+v", caller.Stats())
	}

	// The PBX side re-offers (a new version, plain as before): bridged.
	code, err = caller.Reinvite(ctx, true)
	if err != nil || code != 200 {
		t.Fatalf("pbx re-INVITE: %d %v", code, err)
	}
	if callee.Reinvites() != 1 {
		t.Errorf("carrier got %d re-INVITEs, want 1", callee.Reinvites())
	}
	if ok, _ := callee.SRTP(); !ok {
		t.Error("carrier leg lost SRTP after the bridged re-INVITE")
	}
	if err := caller.Send(ctx, 9000, 20, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := callee.WaitIntact(ctx, packets+20); err != nil {
		t.Fatalf("media after re-INVITE: %+v", callee.Stats())
	}
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s", c.Disposition)
	}
	if d := decision(c, policy.RuleDowngrade); d == nil || d.Verdict != policy.VerdictRejected || d.Status != 488 {
		t.Errorf("no refused downgrade in %+v", c.Decisions)
	}
}

// INFO inside the dialog reaches the other leg.
func TestInfoRelayed(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	code, err := caller.Info(ctx, "Signal=5\r\nDuration=160\r\n")
	if err != nil || code != 200 {
		t.Fatalf("INFO: %d %v", code, err)
	}
	if callee.Infos() != 1 {
		t.Errorf("carrier got %d INFOs", callee.Infos())
	}
	caller.Hangup(ctx)
}

// No media for media.timeout ends the call with BYE on both legs.
func TestMediaTimeout(t *testing.T) {
	l := newLab(t, labOptions{mediaTimeout: time.Second})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	waitEnded(t, "media timeout", caller, callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionTimeout {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}
}

// media.timeout counts from the answer: a callee that rings in silence for
// longer is still answered, and the call then times out as usual.
func TestRingingLongerThanMediaTimeout(t *testing.T) {
	l := newLab(t, labOptions{mediaTimeout: time.Second, carrierAnswer: sim.Answer{Ring: 2500 * time.Millisecond}})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	waitEnded(t, "media timeout", caller, callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionTimeout || c.Answer == nil || c.Answer.Sub(c.Start) < 2*time.Second {
		t.Errorf("disposition %s %q, answer %v, start %v", c.Disposition, c.EndReason, c.Answer, c.Start)
	}
}

// Bytes that are not SIP are dropped and counted (parapet_sip_parse_errors_total),
// and parapet goes on answering. (TestRedactHandler shows they are not logged.)
func TestGarbageCounted(t *testing.T) {
	l := newLab(t, labOptions{})
	u := newUDPPeer(t, l.pbxUDP.String())
	garbage := "NOT SIP AT ALL inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n\r\n"
	if _, err := u.c.WriteToUDP([]byte(garbage), u.to); err != nil {
		t.Fatal(err)
	}
	if !poll(5*time.Second, func() bool { return l.srv.Stats().ParseErrors > 0 }) {
		t.Fatalf("garbage not counted: %+v", l.srv.Stats())
	}
	opt := strings.Join([]string{
		fmt.Sprintf("OPTIONS sip:%s SIP/2.0", l.pbxUDP),
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bKgarbage", u.local()),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:ping@%s>;tag=g1", u.local()),
		fmt.Sprintf("To: <sip:%s>", l.pbxUDP),
		"Call-ID: garbage-then-options", "CSeq: 1 OPTIONS", "Content-Length: 0", "", ""}, "\r\n")
	if got := u.send(t, opt); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Errorf("OPTIONS after garbage: %q", got)
	}
}

// A source outside the zone's peers gets 403 and is counted in the zone's
// outsider tally, with no call record of its own; in observe mode the call
// proceeds and the record says would_reject.
func TestSourceNotAllowed(t *testing.T) {
	only := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	l := newLab(t, labOptions{pbxPeers: only})
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 403)
	tally := l.outsiderTally(t, "pbx")
	if tally.Refused != 1 || tally.Methods["INVITE"] != 1 || tally.Total() != 1 ||
		len(tally.Sources) != 1 || tally.Sources[0].Key != "127.0.0.1" || tally.Prefixes[0].Key != "127.0.0.0/24" {
		t.Errorf("tally %+v", tally)
	}
	if n := len(l.sink.calls()); n != 0 {
		t.Errorf("%d call records for a stranger's INVITE", n)
	}

	o := newLab(t, labOptions{pbxPeers: only, pbxMode: policy.ModeObserve})
	ctx := ctxT(t)
	caller, err := o.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatalf("observe mode refused the call: %v", err)
	}
	incoming(t, o.carrier)
	caller.Hangup(ctx)
	c := o.sink.waitCalls(t, 1)[0]
	if d := decision(c, policy.RuleSourceNotAllowed); d == nil || d.Verdict != policy.VerdictWouldReject {
		t.Errorf("observe decisions %+v", c.Decisions)
	}
}

// An outside host that keeps sending INVITEs is answered within its
// budget (source_rate) and dropped beyond it; the compliance log gets one
// summary record for all of them, not one per INVITE.
func TestRefusedInviteFloodFolded(t *testing.T) {
	lim := topology.DefaultLimits
	lim.SourceRate = 5
	l := newLab(t, labOptions{pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, limits: lim})
	u := newUDPPeer(t, l.pbxUDP.String())
	const n = 40
	for i := range n {
		if _, err := u.c.WriteToUDP([]byte(rawInvite(l.pbxUDP.String(), u.local(), fmt.Sprintf("flood-%d", i))), u.to); err != nil {
			t.Fatal(err)
		}
	}
	answered := u.drain(500 * time.Millisecond)
	for _, r := range answered {
		if !strings.HasPrefix(r, "SIP/2.0 403 ") {
			t.Errorf("a stranger's INVITE got %q", firstLine(r))
		}
	}
	tally := l.outsiderTally(t, "pbx")
	if tally.Total() != n || tally.Refused != uint64(len(answered)) || tally.OverBudget != uint64(n-len(answered)) ||
		tally.Refused < 5 || tally.Refused > 10 {
		t.Errorf("%d INVITEs, %d answered: tally %+v", n, len(answered), tally)
	}
	if calls, conns := len(l.sink.calls()), len(l.sink.conns()); calls != 0 || conns != 1 {
		t.Errorf("%d INVITEs wrote %d call records and %d events, want 0 and 1", n, calls, conns)
	}
	if st := l.srv.Stats(); st.CallsActive != 0 || st.Outsiders["refused"] != tally.Refused ||
		st.Outsiders["over_budget"] != tally.OverBudget {
		t.Errorf("stats %+v", st)
	}
}

// Spoofed, forged and replayed media is dropped and counted; the call's
// audio is unaffected. The counts reach Stats (and so /metrics) while the
// call runs, and stay once it has ended.
func TestSpoofedMediaDropped(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee) // latches both peers

	// Another socket sends to parapet's PBX-side port: wrong source.
	spoof, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	pkt, _ := caller.Packet(20000)
	for range 5 {
		spoof.WriteToUDPAddrPort(pkt, caller.RemoteMedia())
	}
	// Forged SRTP on the carrier side: flip a byte of a valid packet.
	good, err := callee.Packet(20001)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 0xff
	for range 3 {
		callee.SendRaw(forged)
	}
	// Replay: a packet already relayed (seq 5000 was sent by exchange).
	replayed, _ := callee.Packet(5000)
	callee.SendRaw(replayed)
	callee.SendRaw(replayed)
	// Neither forged nor replayed: a STUN binding request and a clear RTP
	// packet too short to be SRTP, counted apart.
	callee.SendRaw([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	callee.SendRaw([]byte{0x80, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0xd5, 0xd5})

	waitFor(t, 5*time.Second, "parapet to count the stray packets", func() bool {
		st := l.srv.Stats()
		return st.AuthFailures >= 3 && st.Replays >= 2 && st.WrongSource >= 5 && st.STUN >= 1 && st.Unprotected >= 1
	})
	before := caller.Stats().Intact
	if err := callee.Send(ctx, 30000, 10, 2*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := caller.WaitIntact(ctx, before+10); err != nil {
		t.Fatalf("audio disturbed: %+v", caller.Stats())
	}
	if st := caller.Stats(); st.Damaged != 0 || st.Intact != before+10 {
		t.Errorf("caller received forged or replayed audio: %+v", st)
	}
	live := l.srv.Stats()
	if live.CallsActive != 1 || live.AuthFailures != 3 || live.Replays != 2 || live.WrongSource != 5 || live.PacketsRelayed == 0 ||
		live.STUN != 1 || live.Unprotected != 1 {
		t.Errorf("while the call runs, Stats %+v; want 3 auth failures, 2 replays, 5 wrong source, 1 STUN, 1 unprotected", live)
	}
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	a, b := leg(c, compliance.RoleA), leg(c, compliance.RoleB)
	if a.Media.WrongSource != 5 {
		t.Errorf("leg a wrong_source = %d, want 5", a.Media.WrongSource)
	}
	if b.Media.AuthFailures != 3 || b.Media.Replays != 2 || b.Media.STUNPackets != 1 || b.Media.Unprotected != 1 || b.Media.Malformed != 0 {
		t.Errorf("leg b %+v, want 3 auth failures, 2 replays, 1 STUN, 1 unprotected, 0 malformed", b.Media)
	}
	// Ended: counted once, never less than while it ran.
	ended := l.srv.Stats()
	if ended.CallsActive != 0 || ended.AuthFailures != 3 || ended.Replays != 2 || ended.WrongSource != 5 ||
		ended.PacketsRelayed < live.PacketsRelayed || ended.PacketsRelayed != a.Media.PacketsIn+b.Media.PacketsIn {
		t.Errorf("after the call, Stats %+v (while it ran %+v; record: %d + %d packets in)", ended, live, a.Media.PacketsIn, b.Media.PacketsIn)
	}
}

// RTP bleed: a stranger that sends to the PBX-side relay port before the
// PBX's first packet neither takes the stream over nor hears the call.
// The PBX is 127.0.0.1; the stranger sends from 127.0.0.2.
func TestStrangerCannotLatchPlainMedia(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	pkt, _ := caller.Packet(1)
	for range 3 {
		stranger.WriteToUDPAddrPort(pkt, caller.RemoteMedia())
	}
	waitFor(t, 5*time.Second, "parapet to count the stranger's packets before the PBX's first", func() bool {
		return l.srv.Stats().WrongSource >= 3
	})
	exchange(t, caller, callee) // both ways, every payload intact, to the PBX itself
	stranger.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := stranger.ReadFromUDP(make([]byte, 1500)); err == nil {
		t.Errorf("the stranger received %d bytes of the call", n)
	}
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if a := leg(c, compliance.RoleA); a.Media.WrongSource != 3 {
		t.Errorf("leg a wrong_source = %d, want 3", a.Media.WrongSource)
	}
}

// Shutdown ends live calls with BYE and records them.
func TestShutdownEndsCalls(t *testing.T) {
	l := newLab(t, labOptions{})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, "BYE at shutdown", caller, callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionShutdown {
		t.Errorf("disposition %s", c.Disposition)
	}
}

// When the compliance log cannot be written, parapet refuses new calls
// (fail closed) and keeps the records it could not write for later.
func TestComplianceLogFailureFailsClosed(t *testing.T) {
	l := newLab(t, labOptions{})
	l.sink.mu.Lock()
	l.sink.fail = errors.New("disk full")
	l.sink.mu.Unlock()
	// A first refused handshake produces a record that cannot be written.
	if c, err := tls.Dial("tcp", l.carrierTLS.String(), &tls.Config{MaxVersion: tls.VersionTLS11, InsecureSkipVerify: true}); err == nil {
		c.Close()
	}
	waitFor(t, 5*time.Second, "the server to stop being ready with an unwritable compliance log", func() bool { return !l.srv.Ready() })
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 503)
	// The refused call's record follows its 503 (the call's last step):
	// held too, with the connection event's.
	waitFor(t, 5*time.Second, "the refused call's record to be held", func() bool { return l.srv.Stats().RecordBacklog == 2 })
	l.sink.mu.Lock()
	l.sink.fail = nil
	l.sink.mu.Unlock()
	if !l.srv.Ready() {
		t.Fatal("not ready after the log recovered")
	}
	if n := len(l.sink.conns()); n != 1 {
		t.Errorf("%d connection records after recovery, want the held one", n)
	}
	if n := len(l.sink.calls()); n != 1 {
		t.Errorf("%d call records after recovery, want the refused call", n)
	}
}

// Unroutable numbers get 404 and a record.
func TestNoRoute(t *testing.T) {
	l := newLab(t, labOptions{outboundMatch: regexp.MustCompile(`^\+?[0-9]{7,15}$`)})
	_, err := l.pbx.Call(ctxT(t), "sip:alice@"+l.pbxUDP.String(), sim.CallOptions{})
	wantRejected(t, err, 404)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 404 || c.Route != "" {
		t.Errorf("record %s %d route %q", c.Disposition, c.SIPStatus, c.Route)
	}
	if len(c.Legs) != 1 {
		t.Errorf("%d legs, want only the caller's", len(c.Legs))
	}
}

// parapet answers the carrier's digest challenge with the route's
// credentials; wrong credentials fail the call with 503, and the record
// says why.
func TestDigestAuthTowardCarrier(t *testing.T) {
	creds := &sim.Credentials{Username: "clinic", Password: "s3cret"}
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Digest: creds}, username: "clinic", password: "s3cret"})
	ctx := ctxT(t)
	caller, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatalf("authenticated call: %v", err)
	}
	incoming(t, l.carrier)
	caller.Hangup(ctx)
	if c := l.sink.waitCalls(t, 1)[0]; c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s", c.Disposition)
	}

	w := newLab(t, labOptions{carrierAnswer: sim.Answer{Digest: creds}, username: "clinic", password: "wrong"})
	_, err = w.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 403)
	c := w.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionFailed || !strings.Contains(c.EndReason, "403") {
		t.Errorf("record %s %d %q", c.Disposition, c.SIPStatus, c.EndReason)
	}
}

// A PBX phone over TCP: its leg is recorded as tcp, the call works.
func TestTCPCaller(t *testing.T) {
	l := newLab(t, labOptions{})
	tcpPBX, err := sim.New(sim.Config{Name: "tcpphone", Transport: "tcp", Listen: netip.AddrPortFrom(loop, 0), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	defer tcpPBX.Close()
	ctx := ctxT(t)
	at := l.srv.Addrs("pbx")[policy.TransportTCP]
	caller, err := tcpPBX.Call(ctx, fmt.Sprintf("sip:+15551230000@%s;transport=tcp", at), sim.CallOptions{})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.carrier)
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if a := leg(c, compliance.RoleA); a.Transport != "tcp" || c.Disposition != compliance.DispositionAnswered {
		t.Errorf("leg a %+v, disposition %s", a, c.Disposition)
	}
}

// A source outside the zone's peers can hold only a few TCP connections;
// further ones are closed at once, counted in the zone's outsider tally
// (no record each). The admitted ones still get their 403.
func TestConnectionLimitForNonPeers(t *testing.T) {
	l := newLab(t, labOptions{pbxPeers: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	at := l.srv.Addrs("pbx")[policy.TransportTCP]
	var conns []net.Conn
	for range 6 {
		// A refused connection may be reset before Dial returns.
		c, err := net.Dial("tcp", at.String())
		if err != nil {
			continue
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
	}
	// Closed or not: a read ends with EOF or a reset on a closed one and
	// times out on an open one.
	open := 0
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			open++
		}
	}
	if open != 4 {
		t.Errorf("%d of 6 connections stayed open, want 4", open)
	}

	// An admitted connection is still answered: OPTIONS gets 403.
	var c net.Conn
	for _, cc := range conns {
		cc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintf(cc, "OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-lim1\r\n"+
			"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: limit-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			at, at); err == nil {
			buf := make([]byte, 512)
			if n, err := cc.Read(buf); err == nil {
				if !strings.HasPrefix(string(buf[:n]), "SIP/2.0 403") {
					t.Errorf("OPTIONS from outside the peers got %q", firstLine(string(buf[:n])))
				}
				c = cc
				break
			}
		}
	}
	if c == nil {
		t.Fatal("no admitted connection answered")
	}

	if st := l.srv.Stats(); st.ConnsRefused != 2 || st.Outsiders["connection"] != 2 {
		t.Errorf("ConnsRefused = %d, Outsiders[connection] = %d; want 2 and 2", st.ConnsRefused, st.Outsiders["connection"])
	}
	// At shutdown the tally is written: one record for the zone, which
	// counts both refusals and names their source.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var tallies []*compliance.ConnEvent
	for _, e := range l.sink.conns() {
		if e.Event == compliance.EventConnectionLimit {
			t.Errorf("a connection_limit record for an outsider: %+v", e)
		}
		if e.Event == compliance.EventOutsiders {
			tallies = append(tallies, e)
		}
	}
	// It counts the OPTIONS answered 403 too: the source sent both.
	if len(tallies) != 1 || tallies[0].Zone != "pbx" || tallies[0].Tally.Connections != 2 || tallies[0].Tally.Refused != 1 ||
		len(tallies[0].Tally.Sources) == 0 || tallies[0].Tally.Sources[0] != (compliance.TallyEntry{Key: "127.0.0.1", Count: 3}) {
		t.Errorf("outsider tallies %+v, want one for pbx counting 2 connections and 1 OPTIONS from 127.0.0.1", tallies)
	}
}

// A route, a zone or the site with max_calls carries that many calls at
// once: the next gets 503 with Retry-After (limits.retry_after) and a
// rejected record naming the limit's rule; once a call ends, a new one
// fits.
func TestCallLimits(t *testing.T) {
	site := topology.DefaultLimits
	site.MaxCalls, site.RetryAfter = 1, 30*time.Second
	for _, c := range []struct {
		name, rule, retry string
		opts              labOptions
	}{
		{"route", policy.RuleRouteCallLimit, "10", labOptions{outboundMax: 1}},
		{"zone", policy.RuleZoneCallLimit, "10", labOptions{pbxMaxCalls: 1}},
		{"site", policy.RuleSiteCallLimit, "30", labOptions{limits: site}},
	} {
		t.Run(c.name, func(t *testing.T) { callLimit(t, c.opts, c.rule, c.retry) })
	}
}

func callLimit(t *testing.T, opts labOptions, rule, retryAfter string) {
	l := newLab(t, opts)
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	_, err := l.callOut(ctx, sim.CallOptions{})
	rej := wantRejected(t, err, 503)
	if !strings.Contains(rej.Warning, "call limit") || rej.RetryAfter != retryAfter {
		t.Errorf("Warning %q, Retry-After %q (want %s)", rej.Warning, rej.RetryAfter, retryAfter)
	}
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionRejected || c.SIPStatus != 503 || decision(c, rule) == nil {
		t.Errorf("record of the refused call: %s %d %+v", c.Disposition, c.SIPStatus, c.Decisions)
	}
	if st := l.srv.Stats(); st.CallLimited != 1 {
		t.Errorf("CallLimited = %d", st.CallLimited)
	}
	exchange(t, caller, callee)
	if err := caller.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	l.sink.waitCalls(t, 2)
	again, err := l.callOut(ctx, sim.CallOptions{})
	if err != nil {
		t.Fatalf("a call after the first ended: %v", err)
	}
	incoming(t, l.carrier)
	again.Hangup(ctx)
	l.sink.waitCalls(t, 3)
}

// A call on hold (a re-INVITE with a=inactive) carries no media, so the
// media timeout gives way to media.hold_timeout; once resumed, silence ends
// the call again. A call left on hold ends at the hold timeout, and its
// record names the limit that ran out.
func TestHoldSuspendsMediaTimeout(t *testing.T) {
	l := newLab(t, labOptions{mediaTimeout: time.Second, holdTimeout: 5 * time.Second})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	caller.SetDirection("inactive")
	if code, err := caller.Reinvite(ctx, false); err != nil || code != 200 {
		t.Fatalf("hold re-INVITE: %d %v", code, err)
	}
	select {
	case <-callee.Context().Done():
		t.Fatal("a call on hold was ended by the media timeout")
	case <-time.After(2500 * time.Millisecond): // over two media timeouts without a packet
	}
	caller.SetDirection("sendrecv")
	if code, err := caller.Reinvite(ctx, false); err != nil || code != 200 {
		t.Fatalf("resume re-INVITE: %d %v", code, err)
	}
	waitEnded(t, "media timeout after the resume", caller, callee)
	c := l.sink.waitCalls(t, 1)[0]
	if c.Disposition != compliance.DispositionTimeout || c.EndReason != "no media for 1s" {
		t.Errorf("resumed call: disposition %s %q", c.Disposition, c.EndReason)
	}

	caller, callee = l.connect(t, ctx)
	exchange(t, caller, callee)
	caller.SetDirection("inactive")
	if code, err := caller.Reinvite(ctx, false); err != nil || code != 200 {
		t.Fatalf("hold re-INVITE: %d %v", code, err)
	}
	waitEnded(t, "hold timeout", caller, callee)
	c = l.sink.waitCalls(t, 2)[1]
	if c.Disposition != compliance.DispositionTimeout || c.EndReason != "no media for 5s (on hold)" {
		t.Errorf("held call: disposition %s %q", c.Disposition, c.EndReason)
	}
}

// A caller that requires reliable provisional responses (Require: 100rel,
// as some carriers do) gets its 183 with early media and its 180 reliably:
// each carries Require: 100rel and an RSeq and is acknowledged with PRACK
// before the next; the call then goes on as usual. Other required
// extensions are still refused with 420.
func TestReliableProvisionalResponses(t *testing.T) {
	l := newLab(t, labOptions{pbxAnswer: sim.Answer{Early: true, Ring: 300 * time.Millisecond}})
	ctx := ctxT(t)
	caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true, Rel100: true})
	if err != nil {
		t.Fatal(err)
	}
	callee := incoming(t, l.pbx)
	var reliable int
	rseqs := map[string]bool{}
	for _, p := range caller.Provisional() {
		if strings.HasPrefix(p, "SIP/2.0 100") {
			continue
		}
		rseq := headerOf(p, "RSeq")
		if !strings.Contains(p, "Require: 100rel") || rseq == "" {
			t.Errorf("provisional response without 100rel: %s", firstLine(p))
			continue
		}
		if fl := firstLine(p); fl != "SIP/2.0 180 Ringing" && fl != "SIP/2.0 183 Session Progress" {
			t.Errorf("provisional %q", fl)
		}
		if !rseqs[rseq] {
			rseqs[rseq] = true
			reliable++
		}
	}
	if reliable < 2 || caller.Pracks() < 2 {
		t.Errorf("%d reliable provisionals (183 and 180 expected), %d PRACKs", reliable, caller.Pracks())
	}
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	if c := l.sink.waitCalls(t, 1)[0]; c.Disposition != compliance.DispositionAnswered {
		t.Errorf("disposition %s %q", c.Disposition, c.EndReason)
	}

	// Any other required extension (timer, RFC 4028, is supported): 420
	// naming it.
	u := newUDPPeer(t, l.pbxUDP.String())
	req := invite(u.local(), l.pbxUDP.String(), "req-replaces", "application/sdp", "")
	req = strings.Replace(req, "Content-Length:", "Require: replaces, timer, 100rel\r\nContent-Length:", 1)
	if res := u.send(t, req); !strings.HasPrefix(res, "SIP/2.0 420") || headerOf(res, "Unsupported") != "replaces" {
		t.Errorf("INVITE requiring replaces: %q", res)
	}
}

// headerOf returns the value of the first header name in a SIP message.
func headerOf(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// A carrier that requires mutual TLS gets parapet's zone certificate when
// parapet dials it, and the call goes through.
func TestOutboundMutualTLS(t *testing.T) {
	l := newLab(t, labOptions{carrierMTLS: true})
	ctx := ctxT(t)
	caller, callee := l.connect(t, ctx)
	exchange(t, caller, callee)
	caller.Hangup(ctx)
	c := l.sink.waitCalls(t, 1)[0]
	if b := leg(c, compliance.RoleB); c.Disposition != compliance.DispositionAnswered || b.TLS == nil || b.TLS.PeerCert == nil || !b.TLS.PeerCert.Verified {
		t.Errorf("record: %s, leg b TLS %+v", c.Disposition, b.TLS)
	}

	// Without a client certificate the same carrier refuses the handshake.
	l2 := newLab(t, labOptions{carrierMTLS: true, parapetClient: func(c *tls.Config) { c.GetClientCertificate = nil }})
	_, err := l2.callOut(ctx, sim.CallOptions{})
	wantRejected(t, err, 503)
}
