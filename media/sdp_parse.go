package media

// SDP reading (RFC 8866, formerly RFC 4566): ParseSDP and the checks it makes
// on each line. The SDP parapet writes is in sdp_build.go, DTLS-SRTP
// attributes in sdp_fingerprint.go, codec names in sdp_codec.go.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// MaxSDPSize is the largest SDP body ParseSDP accepts; bodies above are refused.
const MaxSDPSize = 16 << 10

// Bounds on a parsed body, beyond its size.
const (
	maxStreams    = 16  // m= lines
	maxAttributes = 512 // a= lines, session and media level together
	maxTokenLen   = 64  // media type, proto, format, username
)

// Direction attributes (RFC 3264 section 5.1, RFC 8866 section 6.7).
const (
	dirSendRecv = "sendrecv"
	dirSendOnly = "sendonly"
	dirRecvOnly = "recvonly"
	dirInactive = "inactive"
)

func isDirection(s string) bool {
	return s == dirSendRecv || s == dirSendOnly || s == dirRecvOnly || s == dirInactive
}

// mline is an m= line as parapet reads it. pion/sdp only accepts the media
// types and protocols it knows (no "image", no "udptl"), so m= lines are read
// here and handed to pion in a form it accepts.
type mline struct {
	line    int // line number in the body, from 1
	media   string
	port    int
	protos  []string
	formats []string
}

// scanned is a body checked line by line and normalised for pion.
type scanned struct {
	text      string // the body given to pion: CRLF lines, m= lines rewritten
	lineStart []int  // offset in text of each line
	lineNo    []int  // line number in the original body of each line
	media     []mline
}

// ParseSDP parses an SDP body with pion/sdp/v3 and extracts the streams.
//
// Besides the SDP grammar it checks what parapet needs to relay a stream: at
// least one and at most 16 m= lines; for every active m= line (port not 0) a
// connection address, media-level or session-level, that is an IP literal of
// the family its c= line names (0.0.0.0 is allowed: hold), and at least one
// format; RTP payload types from 0 to 127; no port ranges. Its errors are safe
// to log: they name lines and fields, never key material or the body.
//
// Attributes parapet reads but does not refuse a body for: a=crypto lines
// that cannot be used (CryptoLine.Problem), a=fingerprint lines that cannot
// be used (left out of Stream.Fingerprints, Stream.FingerprintProblem says
// why) and a=setup values that are not a role (read as absent).
func ParseSDP(body []byte) (*Description, error) {
	switch {
	case len(body) == 0:
		return nil, errors.New("parse sdp: empty body")
	case len(body) > MaxSDPSize:
		return nil, fmt.Errorf("parse sdp: body is %d bytes, the limit is %d", len(body), MaxSDPSize)
	}
	sc, err := scan(body)
	if err != nil {
		return nil, fmt.Errorf("parse sdp: %w", err)
	}
	sd := new(sdp.SessionDescription)
	if err := sd.UnmarshalString(sc.text); err != nil {
		return nil, fmt.Errorf("parse sdp: %w", sc.pionError(err))
	}
	if len(sd.MediaDescriptions) != len(sc.media) {
		return nil, errors.New("parse sdp: m= lines out of place")
	}

	d := &Description{
		OriginUser:    sd.Origin.Username,
		OriginSession: sd.Origin.SessionID,
		OriginVersion: sd.Origin.SessionVersion,
		Streams:       make([]Stream, 0, len(sd.MediaDescriptions)),
		raw:           sd,
	}
	sessionAddr, err := connectionAddr(sd.ConnectionInformation)
	if err != nil {
		return nil, fmt.Errorf("parse sdp: session-level c=: %w", err)
	}
	sessionDir := firstDirection(sd.Attributes)
	sessionDTLS := readDTLS(sd.Attributes)

	for i, md := range sd.MediaDescriptions {
		m := sc.media[i]
		// Put back what pion could not be given.
		md.MediaName = sdp.MediaName{
			Media:   m.media,
			Port:    sdp.RangedPort{Value: m.port},
			Protos:  m.protos,
			Formats: m.formats,
		}
		st, err := extractStream(i, m, md, sessionAddr, sessionDir, sessionDTLS)
		if err != nil {
			return nil, fmt.Errorf("parse sdp: line %d: m=%s: %w", m.line, printableMedia(m.media), err)
		}
		d.Streams = append(d.Streams, st)
	}
	return d, nil
}

// extractStream builds the Stream for one media description.
func extractStream(i int, m mline, md *sdp.MediaDescription, sessionAddr netip.Addr, sessionDir string, sessionDTLS dtlsAttrs) (Stream, error) {
	st := Stream{
		Index:   i,
		Media:   m.media,
		Port:    m.port,
		Proto:   strings.Join(m.protos, "/"),
		Formats: slices.Clone(m.formats),
		RTCPMux: hasAttribute(md.Attributes, "rtcp-mux"),
	}
	addr, err := connectionAddr(md.ConnectionInformation)
	if err != nil {
		return Stream{}, fmt.Errorf("c=: %w", err)
	}
	if !addr.IsValid() {
		addr = sessionAddr // RFC 8866 section 5.7: the session-level c= applies
	}
	st.Addr = addr
	active := m.port != 0
	if active {
		if !addr.IsValid() {
			return Stream{}, errors.New("no connection address at media or session level")
		}
		if len(m.formats) == 0 {
			return Stream{}, errors.New("no formats")
		}
	}

	// RFC 3605: a=rtcp:<port> [<nettype> <addrtype> <address>]; without it
	// RTCP is on the next port up (RFC 3550 section 11).
	if v, ok := md.Attribute("rtcp"); ok && active {
		port, ok := parsePort(firstField(v))
		if !ok || port == 0 {
			return Stream{}, errors.New("a=rtcp port is not a number from 1 to 65535")
		}
		st.RTCPPort = port
	} else if active {
		st.RTCPPort = m.port + 1
		if st.RTCPPort > 65535 {
			if !st.RTCPMux {
				return Stream{}, errors.New("port 65535 leaves no port for RTCP")
			}
			st.RTCPPort = m.port // RFC 5761: muxed RTCP shares the RTP port
		}
	}

	st.Codecs = codecNames(m.formats, md.Attributes)

	// RFC 4568 section 9.1: a=crypto is a media-level attribute.
	for _, a := range md.Attributes {
		if a.Key == "crypto" {
			st.Crypto = append(st.Crypto, parseCryptoLine(a.Value))
		}
	}

	// RFC 3264 section 5.1: a media-level direction overrides the session's.
	st.Direction = firstDirection(md.Attributes)
	if st.Direction == "" {
		st.Direction = sessionDir
	}

	// RFC 8122 section 5: session-level fingerprints apply to a stream with
	// no media-level a=fingerprint line; RFC 4145 section 4: likewise a=setup.
	dtls := readDTLS(md.Attributes)
	if !dtls.present {
		dtls.present, dtls.problem = sessionDTLS.present, sessionDTLS.problem
		dtls.fingerprints = cloneFingerprints(sessionDTLS.fingerprints)
	}
	if dtls.setup == "" {
		dtls.setup = sessionDTLS.setup
	}
	st.DTLS, st.Fingerprints, st.FingerprintProblem, st.Setup = dtls.present, dtls.fingerprints, dtls.problem, dtls.setup
	return st, nil
}

// scan checks the body line by line and rewrites it for pion: CRLF line ends,
// no empty lines, m= lines in a form pion accepts (see mline).
func scan(body []byte) (*scanned, error) {
	sc := &scanned{}
	var b strings.Builder
	b.Grow(len(body) + 256)
	attrs := 0
	lineNo := 0
	for rest := string(body); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		lineNo++
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		// RFC 8866 section 5: text fields may hold any byte but NUL, CR and
		// LF. Other control characters are refused too: nothing legitimate
		// uses them and they make logs lie.
		for i := 0; i < len(line); i++ {
			if ch := line[i]; (ch < 0x20 && ch != '\t') || ch == 0x7f {
				return nil, fmt.Errorf("line %d: control character", lineNo)
			}
		}
		if len(line) < 2 || line[1] != '=' || strings.IndexByte("vosiuepcbtrzkam", line[0]) < 0 {
			return nil, fmt.Errorf("line %d: not a <type>=<value> line of a known type", lineNo)
		}
		switch line[0] {
		case 'a':
			if attrs++; attrs > maxAttributes {
				return nil, fmt.Errorf("line %d: more than %d attributes", lineNo, maxAttributes)
			}
		case 'c':
			if _, err := parseConnectionLine(line[2:]); err != nil {
				return nil, fmt.Errorf("line %d: c=: %w", lineNo, err)
			}
		case 'm':
			if len(sc.media) == maxStreams {
				return nil, fmt.Errorf("line %d: more than %d m= lines", lineNo, maxStreams)
			}
			m, err := parseMLine(line[2:])
			if err != nil {
				return nil, fmt.Errorf("line %d: m=: %w", lineNo, err)
			}
			m.line = lineNo
			sc.media = append(sc.media, m)
			// A stand-in pion accepts; ParseSDP puts the real values back.
			line = "m=audio " + strconv.Itoa(m.port) + " RTP/AVP"
			if len(m.formats) > 0 {
				line += " " + strings.Join(m.formats, " ")
			}
		}
		sc.lineStart = append(sc.lineStart, b.Len())
		sc.lineNo = append(sc.lineNo, lineNo)
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	if len(sc.media) == 0 {
		return nil, errors.New("no m= line")
	}
	sc.text = b.String()
	return sc, nil
}

// pionError turns a pion/sdp error into one safe to log. pion quotes the
// offending field, or for b= the whole line; only its category is kept, and a
// syntax error's byte offset becomes a line number.
func (sc *scanned) pionError(err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "sdp: syntax error at pos "); ok {
		if n, err := strconv.Atoi(firstField(strings.ReplaceAll(rest, ":", " "))); err == nil {
			return fmt.Errorf("line %d: syntax error (line type, order or value)", sc.lineAt(n))
		}
	}
	if i := strings.IndexByte(msg, '`'); i >= 0 {
		msg = msg[:i]
	}
	msg = strings.TrimSpace(msg)
	if c, ok := strings.CutPrefix(msg, "sdp: "); ok && c != "" {
		return errors.New(c)
	}
	return errors.New("invalid syntax")
}

// lineAt maps an offset in sc.text to a line number in the original body.
func (sc *scanned) lineAt(pos int) int {
	i, found := slices.BinarySearch(sc.lineStart, pos)
	if !found {
		i--
	}
	if i < 0 || i >= len(sc.lineNo) {
		return 0
	}
	return sc.lineNo[i]
}

// parseMLine reads an m= line's value (RFC 8866 section 5.14):
//
//	m=<media> <port>[/<number of ports>] <proto> <fmt> ...
func parseMLine(v string) (mline, error) {
	f := splitWSP(v)
	if len(f) < 3 {
		return mline{}, errors.New("needs media, port and proto")
	}
	if strings.Contains(f[1], "/") {
		return mline{}, errors.New("port ranges (port/count) are not supported")
	}
	port, ok := parsePort(f[1])
	if !ok {
		return mline{}, errors.New("port is not a number from 0 to 65535")
	}
	if err := checkMLine(f[0], f[2], f[3:]); err != nil {
		return mline{}, err
	}
	return mline{media: f[0], port: port, protos: strings.Split(f[2], "/"), formats: f[3:]}, nil
}

// checkMLine checks the media, proto and formats of an m= line.
func checkMLine(media, proto string, formats []string) error {
	if !isToken(media) {
		return errors.New("media type is not a token")
	}
	if !isProto(proto) {
		return errors.New("proto is not of the form token/token")
	}
	rtp := slices.Contains(strings.Split(proto, "/"), "RTP")
	for _, f := range formats {
		if !isToken(f) {
			return errors.New("format is not a token")
		}
		if rtp {
			// RFC 3551 section 6: an RTP format is a payload type.
			if pt, ok := parsePort(f); !ok || pt > 127 {
				return errors.New("RTP payload type is not a number from 0 to 127")
			}
		}
	}
	return nil
}

// parseConnectionLine reads a c= value, "IN IP4|IP6 <address>" (RFC 8866
// section 5.7). parapet relays unicast media to IP literals only: host names,
// multicast groups (with their /ttl), zones and family mismatches are refused.
func parseConnectionLine(v string) (netip.Addr, error) {
	f := splitWSP(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return netip.Addr{}, errors.New("not IN IP4|IP6 <address>")
	}
	return parseConnAddr(f[1], f[2])
}

func parseConnAddr(addrType, s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errors.New("address is not an IP literal")
	}
	switch {
	case a.Zone() != "":
		return netip.Addr{}, errors.New("address has a zone")
	case addrType == "IP4" && !a.Is4(), addrType == "IP6" && !a.Is6():
		return netip.Addr{}, fmt.Errorf("address is not an %s address", addrType)
	case a.IsMulticast():
		return netip.Addr{}, errors.New("multicast addresses are not supported")
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		// parapet sends to the offered address until the peer's first
		// packet arrives: never to a broadcast address.
		return netip.Addr{}, errors.New("the broadcast address is not a media destination")
	}
	return a, nil
}

// connectionAddr returns the address of a c= line pion parsed, or the zero
// Addr when there is none.
func connectionAddr(ci *sdp.ConnectionInformation) (netip.Addr, error) {
	if ci == nil {
		return netip.Addr{}, nil
	}
	if ci.Address == nil {
		return netip.Addr{}, errors.New("no address")
	}
	return parseConnAddr(ci.AddressType, ci.Address.Address)
}

func firstDirection(attrs []sdp.Attribute) string {
	for _, a := range attrs {
		if isDirection(a.Key) {
			return a.Key
		}
	}
	return ""
}

func hasAttribute(attrs []sdp.Attribute, key string) bool {
	for _, a := range attrs {
		if a.Key == key {
			return true
		}
	}
	return false
}

func firstField(s string) string {
	if f := splitWSP(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

// parsePort parses 0 to 65535 written with 1 to 5 digits.
func parsePort(s string) (int, bool) {
	if len(s) < 1 || len(s) > 5 || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= 65535
}

// isToken reports whether s is an SDP token (RFC 8866 section 9: token-char
// is any visible US-ASCII character but "(),/:;<=>?@[\]), at most
// maxTokenLen long.
func isToken(s string) bool {
	if s == "" || len(s) > maxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch <= 0x20 || ch >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]", ch) >= 0 {
			return false
		}
	}
	return true
}

// isProto checks proto = token *("/" token) (RFC 8866 section 9).
func isProto(s string) bool {
	if len(s) > maxTokenLen {
		return false
	}
	for t := range strings.SplitSeq(s, "/") {
		if !isToken(t) {
			return false
		}
	}
	return true
}
