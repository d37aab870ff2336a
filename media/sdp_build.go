package media

// The SDP parapet writes on each leg of a call (RFC 3264 offer/answer).
//
// The promise kept here: nothing read from one leg's SDP that could carry that
// leg's addresses, identities or keys is ever written into the SDP sent on the
// other leg. BuildSDP copies an allow-list of codec attributes and nothing
// else.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// minSecretLen is the shortest key string BuildSDP hunts for in what it copies:
// any real SRTP key is 28 bytes or more, 38 base64 characters or more.
const minSecretLen = 16

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
