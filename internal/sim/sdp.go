package sim

// The SDP a peer writes by hand (offers and answers, SDES or DTLS-SRTP) and
// how it reads the other side's with pion/sdp (RFC 3264, RFC 4568, RFC 5763).

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/pion/sdp/v3"
)

// offerVersion writes an offer: SDES with lines, or DTLS-SRTP with
// a=setup:dtlsSetup when that is not empty.
func (s *Session) offerVersion(lines []sdesLine, dtlsSetup string, version int) []byte {
	s.mu.Lock()
	s.offered = lines
	s.offeredDTLS = dtlsSetup != ""
	wrong := s.wrongFP
	s.mu.Unlock()
	proto := "RTP/AVP"
	var dt *dtlsAttrs
	switch {
	case dtlsSetup != "":
		proto = "UDP/TLS/RTP/SAVP"
		dt = &dtlsAttrs{setup: dtlsSetup, fingerprint: s.p.cert.fingerprint(wrong), mux: true}
	case len(lines) > 0:
		proto = "RTP/SAVP"
	}
	if s.feedback {
		proto += "F"
	}
	return s.sdp(proto, lines, dt, version)
}

// extraFormats is the m= line's list of n extra formats, 96 up (Config.ExtraFormats).
func extraFormats(n int) string {
	var b strings.Builder
	for pt := 96; pt < 96+n; pt++ {
		fmt.Fprintf(&b, " %d", pt)
	}
	return b.String()
}

// dtlsAttrs are the DTLS-SRTP attributes of an SDP the peer writes.
type dtlsAttrs struct {
	setup, fingerprint string
	mux                bool
}

func (s *Session) sdp(proto string, lines []sdesLine, dt *dtlsAttrs, version int) []byte {
	addr := s.p.cfg.MediaAddr.String()
	var b strings.Builder
	af := "IP4"
	if s.p.cfg.MediaAddr.Is6() {
		af = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=%s 4242 %d IN %s %s\r\ns=sim\r\nc=IN %s %s\r\nt=0 0\r\n", s.p.cfg.Name, version, af, addr, af, addr)
	s.mu.Lock()
	dir := s.direction
	s.mu.Unlock()
	if dir == "" {
		dir = "sendrecv"
	}
	extra := s.p.cfg.ExtraFormats
	fmt.Fprintf(&b, "m=audio %d %s 0 101%s\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
		s.port, proto, extraFormats(extra))
	for pt := 96; pt < 96+extra; pt++ {
		fmt.Fprintf(&b, "a=rtpmap:%d opus/48000/2\r\na=fmtp:%d maxplaybackrate=48000;stereo=1;useinbandfec=1;usedtx=1\r\n", pt, pt)
	}
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	for _, l := range lines {
		fmt.Fprintf(&b, "a=crypto:%d %s inline:%s", l.tag, l.suite, base64.StdEncoding.EncodeToString(l.key))
		if l.params != "" {
			b.WriteString(" " + l.params)
		}
		b.WriteString("\r\n")
	}
	if dt != nil {
		fmt.Fprintf(&b, "a=setup:%s\r\na=fingerprint:%s\r\n", dt.setup, dt.fingerprint)
		if dt.mux {
			b.WriteString("a=rtcp-mux\r\n")
		}
	}
	return []byte(b.String())
}

// answerBody is the peer's answer to the last offer it took.
func (s *Session) answerBody() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtls != nil {
		dt := &dtlsAttrs{setup: s.dtls.setup, mux: s.dtls.mux,
			fingerprint: s.p.cert.fingerprint(s.wrongFP || s.p.cfg.Answer.DTLSWrongFingerprint)}
		return s.sdpLocked(s.proto, nil, dt)
	}
	if s.send == nil {
		return s.sdpLocked("RTP/AVP", nil, nil)
	}
	l := *s.send
	if s.p.cfg.Answer.WrongTag {
		l.tag += 40
	}
	return s.sdpLocked(s.proto, []sdesLine{l}, nil)
}

func (s *Session) sdpLocked(proto string, lines []sdesLine, dt *dtlsAttrs) []byte {
	s.mu.Unlock()
	defer s.mu.Lock()
	return s.sdp(proto, lines, dt, 1)
}

// takeRemote reads the other side's SDP. As answerer (offer=true) it picks a
// crypto line and makes its own key; as offerer it checks the answer's line
// against what it offered.
func (s *Session) takeRemote(body []byte, offered []sdesLine, offer bool) error {
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil {
		return fmt.Errorf("sim: bad SDP: %w", err)
	}
	var m *sdp.MediaDescription
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value != 0 {
			m = md
			break
		}
	}
	if m == nil {
		return errors.New("sim: no active audio stream")
	}
	conn := d.ConnectionInformation
	if m.ConnectionInformation != nil {
		conn = m.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return errors.New("sim: no connection address")
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return err
	}
	var lines []sdesLine
	for _, a := range m.Attributes {
		if a.Key == "crypto" {
			l, err := parseCrypto(a.Value)
			if err != nil {
				return err
			}
			lines = append(lines, l)
		}
	}
	proto := strings.Join(m.MediaName.Protos, "/")
	dt, err := readDTLS(&d, m)
	if err != nil {
		return err
	}
	isDTLS := strings.HasPrefix(proto, "UDP/TLS/") && dt.present
	s.mu.Lock()
	defer s.mu.Unlock()
	remote := netip.AddrPortFrom(ip, uint16(m.MediaName.Port.Value))
	if s.dtls != nil {
		// The association goes on only if nothing it depends on changed.
		return s.keepDTLSLocked(offer, isDTLS, proto, dt, remote)
	}
	s.remote = remote
	s.proto = proto
	if offer && isDTLS && !s.p.cfg.Answer.Plain {
		// RFC 5763 section 5: the answerer picks its role.
		setup := s.p.cfg.Answer.DTLSSetup
		if setup == "" {
			setup = "active"
			if dt.setup == "active" {
				setup = "passive"
			}
		}
		var suites []string
		if s.p.cfg.Answer.Suite != "" {
			suites = []string{s.p.cfg.Answer.Suite}
		}
		s.send, s.recv = nil, nil
		s.dtls = newDTLSState(setup, dt.fps, dt.mux, suites)
		return nil
	}
	if !offer && s.offeredDTLS {
		if !isDTLS {
			return fmt.Errorf("sim: offered DTLS-SRTP, the answer is %s without a=fingerprint", proto)
		}
		var setup string
		switch dt.setup {
		case "active":
			setup = "passive"
		case "passive":
			setup = "active"
		default:
			return fmt.Errorf("sim: a=setup:%s in the answer to a DTLS-SRTP offer", dt.setup)
		}
		s.send, s.recv = nil, nil
		s.dtls = newDTLSState(setup, dt.fps, dt.mux, s.dtlsSuites)
		return nil
	}
	if !offer && dt.present {
		return errors.New("sim: the answer has a=fingerprint but DTLS-SRTP was not offered")
	}
	if offer {
		s.send, s.recv = nil, nil
		if s.p.cfg.Answer.Plain || len(lines) == 0 {
			s.proto = strings.Replace(strings.TrimPrefix(s.proto, "UDP/TLS/"), "RTP/SAVP", "RTP/AVP", 1)
			return nil
		}
		pick := lines[0]
		if want := s.p.cfg.Answer.Suite; want != "" {
			found := false
			for _, l := range lines {
				if l.suite == want {
					pick, found = l, true
					break
				}
			}
			if !found {
				return fmt.Errorf("sim: suite %s not offered", want)
			}
		}
		k, err := newKey(pick.suite)
		if err != nil {
			return err
		}
		recv := pick
		s.recv = &recv
		s.send = &sdesLine{tag: pick.tag, suite: pick.suite, key: k}
		return nil
	}
	// As offerer: the answer's line must be one we offered.
	if len(offered) == 0 {
		if len(lines) > 0 {
			return errors.New("sim: answer has crypto but none was offered")
		}
		s.send, s.recv = nil, nil
		return nil
	}
	if len(lines) != 1 {
		return fmt.Errorf("sim: answer has %d crypto lines, want 1", len(lines))
	}
	for _, o := range offered {
		if o.tag == lines[0].tag && o.suite == lines[0].suite {
			send, recv := o, lines[0]
			s.send, s.recv = &send, &recv
			return nil
		}
	}
	return fmt.Errorf("sim: answer chose tag %d %s, not offered", lines[0].tag, lines[0].suite)
}

// keepDTLSLocked takes a new offer or answer on a session keyed by
// DTLS-SRTP: the sim keeps one association per session, so the SDP must
// keep it (RFC 5763 section 5: same fingerprint, same address, roles
// unchanged); anything else is refused. Caller holds s.mu.
func (s *Session) keepDTLSLocked(offer, isDTLS bool, proto string, dt sdpDTLS, remote netip.AddrPort) error {
	d := s.dtls
	switch {
	case !isDTLS:
		return fmt.Errorf("sim: %s without a=fingerprint on a DTLS-SRTP session", proto)
	case !sameFingerprints(dt.fps, d.remote):
		return errors.New("sim: a new DTLS-SRTP fingerprint mid-call (new association not supported)")
	case remote != s.remote:
		return fmt.Errorf("sim: DTLS-SRTP peer moved from %s to %s mid-call", s.remote, remote)
	case dt.setup == d.setup, dt.setup == "holdconn":
		return fmt.Errorf("sim: a=setup:%s conflicts with this peer's %s", dt.setup, d.setup)
	case !offer && dt.setup != "active" && dt.setup != "passive":
		return fmt.Errorf("sim: a=setup:%s in an answer", dt.setup)
	}
	s.proto = proto
	return nil
}
