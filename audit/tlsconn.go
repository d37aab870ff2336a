package audit

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/policy"
)

// tlsConn is what audit reads of a TLS connection's handshake.
type tlsConn struct {
	n         int
	conn      *tcpConn
	half      [2]tlsHalf
	ch        *clientHello
	sh        *serverHello
	certs     []*x509.Certificate
	alertSeen string
	parseE    string // the first malformed handshake message
}

func newTLSConn(c *tcpConn, n int) *tlsConn {
	t := &tlsConn{n: n, conn: c}
	t.half[0].fromClient = true
	return t
}

func (t *tlsConn) feed(dir int, data []byte) { t.half[dir].feed(data, t) }

func (t *tlsConn) handshakeMsg(fromClient bool, typ uint8, body []byte) {
	var err error
	switch {
	case fromClient && typ == hsClientHello && t.ch == nil:
		t.ch, err = parseClientHello(body)
	case !fromClient && typ == hsServerHello && t.sh == nil:
		t.sh, err = parseServerHello(body)
		if err == nil && t.sh.Version >= policy.VersionTLS13 {
			// Everything the server sends after a TLS 1.3 ServerHello is
			// encrypted, whatever the record type says.
			t.half[1].protected = true
		}
	case !fromClient && typ == hsCertificate && t.certs == nil:
		var ders [][]byte
		ders, err = parseCertificates(body)
		for _, d := range ders {
			c, perr := x509.ParseCertificate(d)
			if perr != nil {
				err = fmt.Errorf("certificate: %w", perr)
				break
			}
			t.certs = append(t.certs, c)
		}
	}
	if err != nil && t.parseE == "" {
		t.parseE = err.Error()
	}
}

func (t *tlsConn) alert(fromClient bool, level, desc uint8) {
	if level == 2 && t.alertSeen == "" { // fatal
		who := "server"
		if fromClient {
			who = "client"
		}
		t.alertSeen = alertName(desc) + " from " + who
	}
}

func (t *tlsConn) protected(bool) {}

// completed reports whether the handshake looks finished: both hellos, no
// fatal alert in clear, and both directions protected.
func (t *tlsConn) completed() bool {
	return t.ch != nil && t.sh != nil && t.alertSeen == "" && t.half[0].protected && t.half[1].protected
}

// failure says why the handshake did not complete.
func (t *tlsConn) failure() string {
	switch {
	case t.alertSeen != "":
		return "alert " + t.alertSeen
	case t.parseE != "":
		return "malformed handshake: " + t.parseE
	case t.sh == nil:
		return "no ServerHello: the connection ended during the handshake"
	}
	return "the connection ended during the handshake"
}

// handshake is the report entry of the connection.
func (t *tlsConn) handshake() report.Handshake {
	h := report.Handshake{Client: t.conn.client.String(), Server: t.conn.server.String(), Alert: t.alertSeen}
	if t.ch != nil {
		h.ClientMaxVersion, h.SNI = t.ch.MaxVersion.String(), t.ch.SNI
	}
	if t.sh != nil {
		h.Version, h.CipherSuite = t.sh.Version.String(), tls.CipherSuiteName(t.sh.Cipher)
	}
	for _, c := range t.certs {
		f := policy.CertFactsOf(c)
		h.Certs = append(h.Certs, report.Cert{Subject: f.Subject, Issuer: f.Issuer, SHA256: f.SHA256, NotAfter: f.NotAfter,
			VerifyError: verifyNote, Seen: 1, LastSeen: t.conn.last})
	}
	return h
}

// verifyNote explains why a certificate read from a capture is never
// marked verified.
const verifyNote = "not verified: read from a capture, without the trust anchors it should chain to"

// certFacts describes the server's leaf certificate, or nil.
func (t *tlsConn) certFacts() *policy.CertFacts {
	if len(t.certs) == 0 {
		return nil
	}
	f := policy.CertFactsOf(t.certs[0])
	f.VerifyError = verifyNote
	return &f
}

// nonSIPALPN are ALPN protocols that say a TLS connection is not SIP.
var nonSIPALPN = []string{"h2", "http/1.1", "http/1.0", "h3", "acme-tls/1", "imap", "pop3", "smtp", "dot", "ftp", "xmpp-client", "mqtt"}

// nonSIPPorts are well-known TLS server ports of other protocols.
var nonSIPPorts = []uint16{443, 465, 636, 853, 993, 995, 8443}

// maybeSIP reports whether the connection may carry SIP: a zone listener
// or port 5061, or else no ALPN or port that names another protocol.
func (a *analyzer) maybeSIP(t *tlsConn) bool {
	srv := t.conn.server
	if srv.Port() == 5061 {
		return true
	}
	for _, z := range a.zones {
		for _, l := range z.Listen {
			if listenMatch(l, srv) {
				return true
			}
		}
	}
	if slices.Contains(nonSIPPorts, srv.Port()) {
		return false
	}
	if t.ch != nil {
		for _, p := range t.ch.ALPN {
			if slices.Contains(nonSIPALPN, strings.ToLower(p)) {
				return false
			}
		}
	}
	return true
}

// judgeTLS lists a closed connection's handshake and, for one that may
// carry SIP, emits its record: a tls_refused connection event when the
// handshake failed, a call record of one TLS leg when it completed.
func (a *analyzer) judgeTLS(c *tcpConn) {
	t := c.tls
	if len(a.handshakes) < MaxListed {
		a.handshakes = append(a.handshakes, t.handshake())
	} else {
		a.omitted++
	}
	if t.ch == nil || !a.maybeSIP(t) {
		return // started before the capture, or not SIP
	}
	z := a.zoneFor(c.client, c.server)
	if !t.completed() {
		d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: &z.Policy,
			Handshake: policy.HandshakeFacts{ClientMaxVersion: t.ch.MaxVersion, Error: t.failure()}})
		ev := &compliance.ConnEvent{Event: compliance.EventTLSRefused, Zone: z.Policy.Name, Transport: "tls",
			Local: c.server.String(), Remote: c.client.String(), ClientMaxVersion: t.ch.MaxVersion.String(),
			SNI: t.ch.SNI, Error: t.failure(), Decision: &d}
		a.record(&compliance.Record{Type: compliance.TypeConnection, Time: c.first, Conn: ev})
		return
	}
	a.tlsCall(c, z)
}

// tlsCall emits the call record of a completed TLS connection whose SIP is
// not visible. Media cannot be tied to an SDP; flows between the two hosts
// that started while the connection was open are judged by their packets.
func (a *analyzer) tlsCall(c *tcpConn, z *Zone) {
	t := c.tls
	tf := &policy.TLSFacts{Version: t.sh.Version, CipherSuite: tls.CipherSuiteName(t.sh.Cipher),
		ServerName: t.ch.SNI, PeerCert: t.certFacts()}
	sig := policy.SignalingFacts{Transport: policy.TransportTLS, TLS: tf, Source: c.client}
	decisions := []policy.Decision{
		policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: &z.Policy,
			Handshake: policy.HandshakeFacts{ClientMaxVersion: t.ch.MaxVersion}}),
		policy.Evaluate(policy.Input{Stage: policy.StageAdmission, Zone: &z.Policy, Signaling: sig,
			Admitted: z.Policy.AdmitsSource(c.client.Addr())}),
	}
	plain, secure := a.flowsBetween(c)
	o := policy.LegOutcome{Signaling: sig, SourceAdmitted: z.Policy.AdmitsSource(c.client.Addr()),
		MediaFlowed: plain+secure > 0, SRTP: plain == 0 && secure > 0}
	if o.SRTP {
		o.KeyExchange = policy.KeyExchangeSDES // SDES or DTLS: the SDP that says is encrypted
	}
	findings := policy.LegFindings(&z.Policy, o)
	var media string
	switch {
	case plain > 0:
		media = fmt.Sprintf("%d media flows between these hosts classified plain RTP by their packets", plain)
	case secure > 0:
		media = fmt.Sprintf("%d media flows between these hosts classified SRTP by their packets (suite and key exchange not visible)", secure)
	default:
		media = "no media flow between these hosts could be classified: media is not judged on this leg (see the capture's media flows)"
	}
	for i := range findings {
		switch findings[i].Control {
		case policy.ControlAuthentication:
			if tf.PeerCert == nil && tf.Version >= policy.VersionTLS13 {
				findings[i].Detail = "server certificate not visible: TLS 1.3 encrypts it"
			}
		case policy.ControlTransmission, policy.ControlEncryption, policy.ControlTransitIntegrity:
			findings[i].Detail = fmt.Sprintf("SIP over %s %s (SDP not visible); %s", tf.Version, tf.CipherSuite, media)
		default: // the other controls keep LegFindings' detail: the capture adds nothing to them
		}
	}
	ti := &compliance.TLSInfo{Version: tf.Version.String(), CipherSuite: tf.CipherSuite, ServerName: tf.ServerName}
	if pc := tf.PeerCert; pc != nil {
		ti.PeerCert = &compliance.CertInfo{Subject: pc.Subject, Issuer: pc.Issuer, SANs: pc.SANs, SHA256: pc.SHA256,
			NotAfter: pc.NotAfter, VerifyError: pc.VerifyError}
	}
	call := &compliance.Call{
		ID: fmt.Sprintf("capture-tls-%d", t.n), Pseudonymized: true,
		Start: c.first, End: c.last, Disposition: compliance.DispositionUnobserved,
		EndReason: "SIP over TLS: the dialog is encrypted and not visible in the capture",
		Legs: []compliance.Leg{{Role: compliance.RoleA, Zone: z.Policy.Name, Transport: "tls",
			Local: c.server.String(), Remote: c.client.String(), TLS: ti, Controls: findings}},
		Decisions: decisions,
	}
	a.record(&compliance.Record{Type: compliance.TypeCall, Time: c.first, Call: call})
}
