package media

// SDP reading (RFC 8866, formerly RFC 4566) and the SDP parapet writes on each
// leg of a call (RFC 3264 offer/answer).
//
// The promise kept here: nothing read from one leg's SDP that could carry that
// leg's addresses, identities or keys is ever written into the SDP sent on the
// other leg. BuildSDP copies an allow-list of codec attributes and nothing
// else.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// minSecretLen is the shortest key string BuildSDP hunts for in what it copies:
// any real SRTP key is 28 bytes or more, 38 base64 characters or more.
const minSecretLen = 16

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

// DTLS-SRTP attributes (RFC 5763 section 5): a=fingerprint (RFC 8122) and
// a=setup (RFC 4145).
const (
	maxFingerprints   = 8  // a=fingerprint lines read per level, session or media
	maxFingerprintLen = 64 // bytes, a SHA-512 digest
)

// Connection roles (RFC 4145 section 4).
const (
	setupActive   = "active"
	setupPassive  = "passive"
	setupActPass  = "actpass"
	setupHoldConn = "holdconn"
)

// dtlsAttrs are the DTLS-SRTP attributes of one level, session or media.
type dtlsAttrs struct {
	present      bool // an a=fingerprint line, usable or not
	fingerprints []Fingerprint
	problem      string // the first reason a fingerprint line was left out
	setup        string // "" when absent or invalid
}

// readDTLS reads the a=fingerprint and a=setup lines of one level. Lines past
// maxFingerprints are not read; a=setup is the first one, lower-cased, and a
// value other than RFC 4145's four counts as absent.
func readDTLS(attrs []sdp.Attribute) dtlsAttrs {
	var d dtlsAttrs
	problem := func(p string) {
		if d.problem == "" {
			d.problem = p
		}
	}
	n, setupSeen := 0, false
	for _, a := range attrs {
		switch a.Key {
		case "fingerprint":
			d.present = true
			if n++; n > maxFingerprints {
				problem(fmt.Sprintf("more than %d fingerprints, the rest are ignored", maxFingerprints))
				continue
			}
			f, err := parseFingerprint(a.Value)
			if err != nil {
				problem(fmt.Sprintf("fingerprint %d: %v", n, err))
				continue
			}
			d.fingerprints = append(d.fingerprints, f)
		case "setup":
			if !setupSeen {
				setupSeen = true
				d.setup = setupRole(a.Value)
			}
		}
	}
	return d
}

// parseFingerprint reads an a=fingerprint value (RFC 8122 section 5):
//
//	fingerprint-attribute = "fingerprint" ":" hash-func SP fingerprint
//	hash-func             = "sha-1" / "sha-224" / "sha-256" / "sha-384" / "sha-512" / "md5" / "md2" / token
//	fingerprint           = 2UHEX *(":" 2UHEX)
//
// The hash function is matched without regard to case and kept lower-cased;
// lower-case hex is accepted too. Only the SHA-1 and SHA-2 functions are
// read, with the digest length each implies: RFC 8122 forbids MD2 and MD5,
// and parapet knows no other. Errors echo only a known hash function's name.
func parseFingerprint(v string) (Fingerprint, error) {
	f := splitWSP(v)
	if len(f) != 2 {
		return Fingerprint{}, errors.New("not <hash function> <fingerprint>")
	}
	if !isToken(f[0]) {
		return Fingerprint{}, errors.New("hash function is not a token")
	}
	hash := strings.ToLower(f[0])
	if hash == "md2" || hash == "md5" {
		return Fingerprint{}, fmt.Errorf("hash function %s is not allowed (RFC 8122 section 5)", hash)
	}
	n, ok := fingerprintLen(hash)
	if !ok {
		return Fingerprint{}, errors.New("hash function is not supported")
	}
	if len(f[1]) > 3*maxFingerprintLen-1 {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is longer than %d bytes", hash, maxFingerprintLen)
	}
	b, ok := decodeFingerprint(f[1])
	if !ok {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is not hex bytes separated by ':'", hash)
	}
	if len(b) != n {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is %d bytes, needs %d", hash, len(b), n)
	}
	return Fingerprint{Hash: hash, Value: b}, nil
}

// fingerprintLen is the digest length of the hash functions parapet reads
// fingerprints of (RFC 8122 section 5, names from the IANA Hash Function
// Textual Names registry).
func fingerprintLen(hash string) (int, bool) {
	switch hash {
	case "sha-1":
		return 20, true
	case "sha-224":
		return 28, true
	case "sha-256":
		return 32, true
	case "sha-384":
		return 48, true
	case "sha-512":
		return 64, true
	}
	return 0, false
}

// decodeFingerprint decodes 2HEXDIG *(":" 2HEXDIG), either case.
func decodeFingerprint(s string) ([]byte, bool) {
	if len(s)%3 != 2 {
		return nil, false
	}
	out := make([]byte, 0, (len(s)+1)/3)
	for i := 0; i < len(s); i += 3 {
		if i > 0 && s[i-1] != ':' {
			return nil, false
		}
		hi, ok1 := hexNibble(s[i])
		lo, ok2 := hexNibble(s[i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, hi<<4|lo)
	}
	return out, true
}

func hexNibble(ch byte) (byte, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', true
	case ch >= 'a' && ch <= 'f':
		return ch - 'a' + 10, true
	case ch >= 'A' && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

// fingerprintString writes a fingerprint value: the hash function in lower
// case, a space and the digest in upper-case hex pairs separated by ':'.
func fingerprintString(f Fingerprint) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(f.Hash) + 3*len(f.Value))
	b.WriteString(strings.ToLower(f.Hash))
	b.WriteByte(' ')
	for i, v := range f.Value {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(digits[v>>4])
		b.WriteByte(digits[v&0x0f])
	}
	return b.String()
}

func cloneFingerprints(fs []Fingerprint) []Fingerprint {
	if fs == nil {
		return nil
	}
	out := make([]Fingerprint, len(fs))
	for i, f := range fs {
		out[i] = Fingerprint{Hash: f.Hash, Value: slices.Clone(f.Value)}
	}
	return out
}

// setupRole returns an a=setup value lower-cased when it is one of RFC 4145
// section 4's roles, else "".
func setupRole(v string) string {
	v = strings.Trim(v, " \t")
	for _, r := range []string{setupActive, setupPassive, setupActPass, setupHoldConn} {
		if strings.EqualFold(v, r) {
			return r
		}
	}
	return ""
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
		if len(line) < 2 || line[1] != '=' || !strings.Contains("vosiuepcbtrzkam", line[:1]) {
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

// staticCodecs are the static RTP payload types of RFC 3551 (table 4 and
// 5) that carry audio or video.
var staticCodecs = map[string]string{
	"0": "PCMU/8000", "3": "GSM/8000", "4": "G723/8000", "5": "DVI4/8000", "6": "DVI4/16000",
	"7": "LPC/8000", "8": "PCMA/8000", "9": "G722/8000", "10": "L16/44100/2", "11": "L16/44100",
	"12": "QCELP/8000", "13": "CN/8000", "14": "MPA/90000", "15": "G728/8000", "16": "DVI4/11025",
	"17": "DVI4/22050", "18": "G729/8000", "25": "CelB/90000", "26": "JPEG/90000", "28": "nv/90000",
	"31": "H261/90000", "32": "MPV/90000", "33": "MP2T/90000", "34": "H263/90000",
}

// maxCodecName bounds a codec name taken from an rtpmap.
const maxCodecName = 64

// codecNames names formats from the stream's a=rtpmap lines (RFC 8866
// section 6.6), else the static table. A name that is not printable ASCII,
// or too long, is left out: it would be written into records.
func codecNames(formats []string, attrs []sdp.Attribute) []string {
	rtpmap := map[string]string{}
	for _, a := range attrs {
		if a.Key != "rtpmap" {
			continue
		}
		pt, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		enc = strings.TrimSpace(enc)
		if !ok || enc == "" || len(enc) > maxCodecName || !printableASCII(enc) {
			continue
		}
		if _, dup := rtpmap[pt]; !dup {
			rtpmap[pt] = enc
		}
	}
	out := make([]string, len(formats))
	for i, f := range formats {
		if n, ok := rtpmap[f]; ok {
			out[i] = n
		} else {
			out[i] = staticCodecs[f]
		}
	}
	return out
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// Codec is the stream's first media format that is a codec, not a helper
// format (telephone-event, comfort noise, redundancy, FEC, retransmission):
// in an answer, what the answerer will send (RFC 3264 section 6.1). "" when
// none is named.
func (s Stream) Codec() string {
	for _, c := range s.Codecs {
		name, _, _ := strings.Cut(c, "/")
		switch strings.ToLower(name) {
		case "", "telephone-event", "cn", "red", "ulpfec", "flexfec", "rtx":
			continue
		}
		return c
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

// BuildSDP writes the SDP parapet sends on a leg, taking codecs and directions
// from src (the other leg's SDP, as ParseSDP returned it) and transport
// details from plans (one per src stream, same order). The m= lines keep src's
// order and count, as RFC 3264 section 6 requires of an answer.
//
// What is copied from src: media types and formats, and the attributes
// rtpmap, fmtp and rtcp-fb (for the formats written; rtcp-fb only when the
// written proto is a feedback profile ending in F), ptime, maxptime,
// framerate, label, the T.38 parameters T38* (ITU-T T.38 Annex D) and the
// direction attributes. Everything else (c=, o= address, s=, i=, u=, e=, p=,
// b=, k=, crypto, fingerprint, setup, ICE, candidates, rtcp, ssrc, msid, mid,
// extmap, group, ...) is dropped: it is the other leg's topology, identity or
// keys. As a last guard, a copied attribute holding any of src's inline key
// strings or ICE passwords is dropped, and an output that would still hold
// one is refused.
//
// What is written from the plans: the port (0 when not Active), proto, the
// session-level c= from the first active plan (origin.Addr when none is
// active), a media-level c= when a plan's address differs from it, a=rtcp
// when RTCP is not on the next port up (RFC 3605; Local.RTCPPort 0 means the
// next port up), a=rtcp-mux (RFC 5761), one a=crypto per plan.Crypto (RFC
// 4568, padded base64), a=setup and a=fingerprint from plan.DTLS (RFC 5763
// section 5) and the direction override. Each plan crypto line must be
// usable: a supported suite, the right key length, no MKI, no KDR, no
// UNENCRYPTED_*/UNAUTHENTICATED_* parameter, unique tags. A plan's DTLS side
// must have the setup role active, passive or actpass and a fingerprint that
// ParseSDP reads back unchanged (sha-1 or SHA-2, the digest length its hash
// function implies); a plan cannot have both crypto lines and DTLS.
//
// The result has CRLF line ends and is checked to parse with ParseSDP.
func BuildSDP(src *Description, origin Origin, plans []StreamPlan) ([]byte, error) {
	if src == nil {
		return nil, errors.New("build sdp: no source description")
	}
	sd, ok := src.raw.(*sdp.SessionDescription)
	if !ok || sd == nil {
		return nil, errors.New("build sdp: source description was not made by ParseSDP")
	}
	if len(plans) != len(src.Streams) {
		return nil, fmt.Errorf("build sdp: %d plans for %d streams", len(plans), len(src.Streams))
	}
	if len(sd.MediaDescriptions) != len(src.Streams) {
		return nil, errors.New("build sdp: source streams do not match its media descriptions")
	}
	if len(src.Streams) == 0 || len(src.Streams) > maxStreams {
		return nil, fmt.Errorf("build sdp: %d streams, must be 1 to %d", len(src.Streams), maxStreams)
	}

	user := origin.Username
	if user == "" {
		user = "-" // RFC 8866 section 5.2: "-" when there is no user id
	}
	if !isToken(user) {
		return nil, errors.New("build sdp: origin username is not a token")
	}
	originType, originAddr, err := addrFields(origin.Addr)
	if err != nil {
		return nil, fmt.Errorf("build sdp: origin address: %w", err)
	}

	// The session-level c= is the first active stream's relay address.
	sessionAddr := origin.Addr.Unmap()
	for _, p := range plans {
		if p.Active {
			sessionAddr = p.Local.Addr.Unmap()
			break
		}
	}
	sessionType, sessionAddrText, err := addrFields(sessionAddr)
	if err != nil {
		return nil, fmt.Errorf("build sdp: stream address: %w", err)
	}

	secrets := sourceSecrets(sd)
	w := &sdpWriter{secrets: secrets}
	// RFC 8866 section 5: v=, o=, s=, c=, t= in this order.
	w.line("v=0")
	w.line(fmt.Sprintf("o=%s %d %d IN %s %s", user, origin.Session, origin.Version, originType, originAddr))
	w.line("s=parapet") // never the peer's session name: it can name people
	w.line("c=IN " + sessionType + " " + sessionAddrText)
	w.line("t=0 0")
	if dir := firstDirection(sd.Attributes); dir != "" {
		w.attr(dir)
	}

	for i := range src.Streams {
		if err := w.stream(&src.Streams[i], sd.MediaDescriptions[i], plans[i], sessionAddr); err != nil {
			return nil, fmt.Errorf("build sdp: stream %d: %w", i, err)
		}
	}

	out := w.b.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			return nil, errors.New("build sdp: output would carry key material from the source sdp")
		}
	}
	if len(out) > MaxSDPSize {
		return nil, fmt.Errorf("build sdp: output is %d bytes, the limit is %d", len(out), MaxSDPSize)
	}
	if w.attrs > maxAttributes {
		return nil, fmt.Errorf("build sdp: output has %d attributes, the limit is %d", w.attrs, maxAttributes)
	}
	if _, err := ParseSDP([]byte(out)); err != nil {
		return nil, fmt.Errorf("build sdp: output does not parse: %w", err)
	}
	return []byte(out), nil
}

// sdpWriter accumulates the lines BuildSDP writes.
type sdpWriter struct {
	b       strings.Builder
	attrs   int
	secrets []string
}

func (w *sdpWriter) line(s string) {
	w.b.WriteString(s)
	w.b.WriteString("\r\n")
}

func (w *sdpWriter) attr(s string) {
	w.attrs++
	w.line("a=" + s)
}

// stream writes one m= section.
func (w *sdpWriter) stream(st *Stream, md *sdp.MediaDescription, p StreamPlan, sessionAddr netip.Addr) error {
	if !p.Active {
		// RFC 3264 section 6: a refused stream keeps its m= line with port 0;
		// its proto and formats are src's and no attribute is needed.
		if err := checkMLine(st.Media, st.Proto, st.Formats); err != nil {
			return fmt.Errorf("m= line: %w", err)
		}
		m := "m=" + st.Media + " 0 " + st.Proto
		if len(st.Formats) > 0 {
			m += " " + strings.Join(st.Formats, " ")
		}
		w.line(m)
		return nil
	}

	if len(st.Formats) == 0 {
		return errors.New("active stream without formats")
	}
	if p.Local.Port < 1 || p.Local.Port > 65535 {
		return errors.New("local port is not 1 to 65535")
	}
	if p.Local.RTCPPort < 0 || p.Local.RTCPPort > 65535 {
		return errors.New("local RTCP port is not 0 to 65535")
	}
	if p.Direction != "" && !isDirection(p.Direction) {
		return errors.New("direction is not sendrecv, sendonly, recvonly or inactive")
	}
	if err := checkMLine(st.Media, p.Proto, st.Formats); err != nil {
		return fmt.Errorf("m= line: %w", err)
	}
	m := "m=" + st.Media + " " + strconv.Itoa(p.Local.Port) + " " + p.Proto + " " + strings.Join(st.Formats, " ")
	cryptoLines, err := planCrypto(p.Crypto)
	if err != nil {
		return err
	}
	var setup, fingerprint string
	if p.DTLS != nil {
		if len(p.Crypto) > 0 {
			// RFC 5763 section 5 keys SRTP by DTLS; parapet never offers
			// SDES keys beside it on one m= line.
			return errors.New("plan has both crypto lines and DTLS")
		}
		if setup, fingerprint, err = planDTLS(*p.DTLS); err != nil {
			return err
		}
	}
	w.line(m)

	if addr := p.Local.Addr.Unmap(); addr != sessionAddr {
		t, a, err := addrFields(addr)
		if err != nil {
			return fmt.Errorf("local address: %w", err)
		}
		w.line("c=IN " + t + " " + a)
	}

	// Codec attributes from src, in src's order.
	feedback := strings.HasSuffix(p.Proto, "F") // RFC 4585 section 4.2: rtcp-fb needs AVPF/SAVPF
	for _, a := range md.Attributes {
		if !copyAttribute(a, st.Formats, feedback) || w.hasSecret(a.Value) {
			continue
		}
		if a.Value == "" {
			w.attr(a.Key)
		} else {
			w.attr(a.Key + ":" + a.Value)
		}
	}

	dir := p.Direction
	if dir == "" {
		dir = firstDirection(md.Attributes)
	}
	if dir != "" {
		w.attr(dir)
	}
	// RFC 3605 section 2.1: a=rtcp only when RTCP is not on the next port.
	if !p.RTCPMux && p.Local.RTCPPort != 0 && p.Local.RTCPPort != p.Local.Port+1 {
		w.attr("rtcp:" + strconv.Itoa(p.Local.RTCPPort))
	}
	if p.RTCPMux {
		w.attr("rtcp-mux") // RFC 5761 section 5.1.1
	}
	for _, c := range cryptoLines {
		w.attr("crypto:" + c)
	}
	if p.DTLS != nil {
		w.attr("setup:" + setup)             // RFC 4145 section 4, RFC 5763 section 5
		w.attr("fingerprint:" + fingerprint) // RFC 8122 section 5
	}
	return nil
}

// planDTLS checks the plan's DTLS side and returns the a=setup and
// a=fingerprint values to write. The fingerprint must survive
// parseFingerprint unchanged, so a hand-built one can neither inject text
// into the SDP nor be one the other side's parapet would leave out.
func planDTLS(d DTLSPlan) (setup, fingerprint string, err error) {
	switch d.Setup {
	case setupActive, setupPassive, setupActPass:
	default:
		// holdconn (RFC 4145 section 4) opens no connection: never planned.
		return "", "", errors.New("dtls setup is not active, passive or actpass")
	}
	f := d.Fingerprint
	switch {
	case !isToken(f.Hash):
		return "", "", errors.New("dtls fingerprint: hash function is not a token")
	case len(f.Value) == 0:
		return "", "", errors.New("dtls fingerprint: no fingerprint bytes")
	case len(f.Value) > maxFingerprintLen:
		return "", "", fmt.Errorf("dtls fingerprint: more than %d bytes", maxFingerprintLen)
	}
	fingerprint = f.String()
	back, err := parseFingerprint(fingerprint)
	if err != nil {
		return "", "", fmt.Errorf("dtls fingerprint: %w", err)
	}
	if !strings.EqualFold(back.Hash, f.Hash) || !slices.Equal(back.Value, f.Value) {
		return "", "", errors.New("dtls fingerprint: does not read back as written")
	}
	return d.Setup, fingerprint, nil
}

func (w *sdpWriter) hasSecret(s string) bool {
	for _, sec := range w.secrets {
		if strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

// copyAttribute reports whether a media-level attribute of src is codec
// information BuildSDP carries over. It is an allow-list: anything not named
// here stays on its own leg.
func copyAttribute(a sdp.Attribute, formats []string, feedback bool) bool {
	switch a.Key {
	case "rtpmap", "fmtp":
		// RFC 8866 sections 6.6 and 6.15: "<format> <parameters>".
		return slices.Contains(formats, firstField(a.Value))
	case "rtcp-fb":
		// RFC 4585 section 4.2: "<format>|* <feedback>".
		pt := firstField(a.Value)
		return feedback && (pt == "*" || slices.Contains(formats, pt))
	case "ptime", "maxptime", "framerate":
		return true
	case "label":
		return isToken(a.Value) // RFC 4574: a token naming the stream
	}
	// ITU-T T.38 Annex D: T38FaxVersion, T38MaxBitRate, T38FaxRateManagement...
	return len(a.Key) > 3 && strings.EqualFold(a.Key[:3], "T38") && isToken(a.Key)
}

// planCrypto checks the plan's crypto lines and returns them marshalled.
// Each must survive ParseCrypto unchanged and be usable (checkLine finds
// nothing), so a hand-built Crypto can neither inject text into the SDP nor
// offer something weaker than parapet supports.
func planCrypto(cs []Crypto) ([]string, error) {
	out := make([]string, 0, len(cs))
	tags := make(map[int]bool, len(cs))
	for _, c := range cs {
		if tags[c.Tag] {
			return nil, fmt.Errorf("crypto tag %d is used twice", c.Tag) // RFC 4568 section 9.1: unique per m= line
		}
		tags[c.Tag] = true
		if !SupportedSuite(c.Suite) {
			return nil, fmt.Errorf("crypto tag %d: %s: %w", c.Tag, printableSuite(c.Suite), ErrUnsupportedSuite)
		}
		if c.MKI {
			return nil, fmt.Errorf("crypto tag %d: MKI is not supported", c.Tag)
		}
		s := c.Marshal()
		back, several, err := parseCrypto(s)
		if err != nil || several || !sameCrypto(back, c) {
			return nil, fmt.Errorf("crypto tag %d: line does not read back as written", c.Tag)
		}
		l := CryptoLine{Crypto: back}
		checkLine(&l)
		if l.Problem != "" {
			return nil, fmt.Errorf("crypto tag %d: %s", c.Tag, l.Problem)
		}
		if len(l.Unsafe) > 0 {
			return nil, fmt.Errorf("crypto tag %d: refusing to offer %s", c.Tag, strings.Join(l.Unsafe, ","))
		}
		out = append(out, s)
	}
	return out, nil
}

func sameCrypto(a, b Crypto) bool {
	return a.Tag == b.Tag && a.Suite == b.Suite && string(a.Key) == string(b.Key) &&
		a.Lifetime == b.Lifetime && a.MKI == b.MKI && slices.Equal(a.Params, b.Params)
}

// addrFields returns the addrtype and address text for a c= or o= line.
func addrFields(a netip.Addr) (addrType, text string, err error) {
	a = a.Unmap()
	switch {
	case !a.IsValid():
		return "", "", errors.New("not set")
	case a.Zone() != "":
		return "", "", errors.New("has a zone")
	case a.IsMulticast():
		return "", "", errors.New("is multicast")
	case a.Is4():
		return "IP4", a.String(), nil
	}
	return "IP6", a.String(), nil
}

// sourceSecrets collects the key strings of src that must never be copied:
// every inline: key of every a=crypto line (FEC_KEY ones included), ICE
// passwords and k= keys. Strings shorter than minSecretLen are left out:
// they are not real keys and would match innocent text.
func sourceSecrets(sd *sdp.SessionDescription) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimRight(s, "=")
		if len(s) >= minSecretLen && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	scanAttrs := func(attrs []sdp.Attribute, k *sdp.EncryptionKey) {
		for _, a := range attrs {
			switch a.Key {
			case "crypto":
				for _, key := range inlineKeys(a.Value) {
					add(key)
				}
			case "ice-pwd":
				add(strings.TrimSpace(a.Value))
			}
		}
		if k != nil {
			// RFC 8866 section 5.12: k=<method>:<key>
			if _, key, ok := strings.Cut(string(*k), ":"); ok {
				add(strings.TrimSpace(key))
			}
		}
	}
	scanAttrs(sd.Attributes, sd.EncryptionKey)
	for _, md := range sd.MediaDescriptions {
		scanAttrs(md.Attributes, md.EncryptionKey)
	}
	return out
}

// inlineKeys returns the key strings after each "inline:" in s, whatever the
// case, up to the next '|', ';' or whitespace.
func inlineKeys(s string) []string {
	var keys []string
	for {
		i := indexFoldASCII(s, "inline:")
		if i < 0 {
			return keys
		}
		s = s[i+len("inline:"):]
		end := strings.IndexAny(s, "|; \t")
		if end < 0 {
			end = len(s)
		}
		keys = append(keys, s[:end])
	}
}

// indexFoldASCII is strings.Index ignoring ASCII case. It works on bytes:
// strings.ToLower would change the length of invalid UTF-8 and misplace the
// index.
func indexFoldASCII(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

// String summarises the description without keys: origin, then each stream's
// media, transport, address, direction, DTLS (fingerprint hash functions, not
// digests) and setup role, and crypto lines (redacted).
func (d Description) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sdp o=%s %d %d", printableToken(d.OriginUser), d.OriginSession, d.OriginVersion)
	for _, st := range d.Streams {
		fmt.Fprintf(&b, "; m=%s %d %s", printableMedia(st.Media), st.Port, printableProto(st.Proto))
		if st.Addr.IsValid() {
			fmt.Fprintf(&b, " %s", st.Addr)
		}
		if st.Direction != "" && isDirection(st.Direction) {
			b.WriteString(" " + st.Direction)
		}
		if st.DTLS {
			b.WriteString(" dtls")
			for _, f := range st.Fingerprints {
				b.WriteString(" " + printableToken(f.Hash))
			}
			if st.FingerprintProblem != "" {
				b.WriteString(" (fingerprint problem)")
			}
		}
		if r := setupRole(st.Setup); r != "" && r == st.Setup {
			b.WriteString(" setup:" + r)
		}
		for _, c := range st.Crypto {
			b.WriteString(" [" + c.String() + "]")
		}
	}
	return b.String()
}

// GoString keeps %#v from printing the raw body, keys included.
func (d Description) GoString() string { return "media.Description{" + d.String() + "}" }

// LogValue keeps the raw body out of structured logs.
func (d Description) LogValue() slog.Value { return slog.StringValue(d.String()) }

// Format makes every fmt verb print the summary: the unexported raw field
// holds the whole body, keys included, and fmt would print it.
func (d Description) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, d.GoString())
		return
	}
	_, _ = io.WriteString(f, d.String())
}

func printableToken(s string) string {
	if isToken(s) {
		return s
	}
	return "<invalid>"
}

// printableMedia returns the media type when it is a registered one (RFC 8866
// section 5.14 and the IANA media registry); a hostile peer could put anything
// in its place.
func printableMedia(s string) string {
	switch s {
	case "audio", "video", "text", "application", "message", "image":
		return s
	}
	return "<other>"
}

func printableProto(s string) string {
	if isProto(s) {
		return s
	}
	return "<invalid>"
}
