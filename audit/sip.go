package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Bounds on a SIP message read from a capture or a trace.
const (
	// maxSIPHeader is the largest header section read (start line and
	// headers); a message beyond it is refused.
	maxSIPHeader = 16 << 10
	// maxSIPBody is the largest body read (media.MaxSDPSize bounds SDP
	// further).
	maxSIPBody = 64 << 10
	// maxHeaders bounds the header lines of one message.
	maxHeaders = 256
)

// errIncomplete says a buffer holds the start of a message, not all of it
// (TCP: wait for more bytes).
var errIncomplete = errors.New("incomplete SIP message")

// sipMsg is what audit reads of one SIP message: the start line, the few
// headers it needs (by canonical name, first value) and the body.
type sipMsg struct {
	Request bool
	Method  string // requests
	URI     string // requests
	Status  int    // responses
	Reason  string // responses

	CallID        string
	From, To      string // the header values as written
	CSeqNum       uint32
	CSeqMethod    string
	Via           string // the top Via value
	UserAgent     string
	Server        string
	ContentType   string
	ContentLength int // -1 when absent
	Body          []byte
}

// compact maps compact header forms (RFC 3261 section 7.3.3) to full names.
var compact = map[string]string{
	"i": "call-id", "f": "from", "t": "to", "v": "via", "l": "content-length",
	"c": "content-type", "m": "contact", "k": "supported",
}

// sipMethods are the request methods audit recognises at the start of a
// datagram or stream (RFC 3261 and extensions).
var sipMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK",
	"UPDATE", "INFO", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"}

// looksLikeSIP reports whether b starts like a SIP message: a known method
// followed by a space, or "SIP/2.0 ".
func looksLikeSIP(b []byte) bool {
	if bytes.HasPrefix(b, []byte("SIP/2.0 ")) {
		return true
	}
	for _, m := range sipMethods {
		if len(b) > len(m) && b[len(m)] == ' ' && string(b[:len(m)]) == m {
			return true
		}
	}
	return false
}

// headerEnd finds the blank line that ends a header section: it returns the
// index just past it and true, accepting CRLF or bare LF line ends.
func headerEnd(b []byte) (int, bool) {
	for i := 0; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		j := i + 1
		if j < len(b) && b[j] == '\r' {
			j++
		}
		if j < len(b) && b[j] == '\n' {
			return j + 1, true
		}
	}
	return 0, false
}

// parseSIP reads one message from the front of b and returns it and the
// number of bytes it took. stream says b comes from a byte stream (TCP),
// where Content-Length frames the body and a short buffer gives
// errIncomplete; for a datagram the body is the rest of b, cut to
// Content-Length when that is shorter.
func parseSIP(b []byte, stream bool) (*sipMsg, int, error) {
	end, ok := headerEnd(b)
	if !ok {
		if len(b) > maxSIPHeader {
			return nil, 0, fmt.Errorf("SIP header section longer than %d bytes", maxSIPHeader)
		}
		if stream {
			return nil, 0, errIncomplete
		}
		end = len(b) // a datagram without a blank line: headers only
	}
	if end > maxSIPHeader {
		return nil, 0, fmt.Errorf("SIP header section longer than %d bytes", maxSIPHeader)
	}
	m := &sipMsg{ContentLength: -1}
	if err := m.parseHead(b[:end]); err != nil {
		return nil, 0, err
	}
	rest := b[end:]
	switch {
	case stream && m.ContentLength < 0:
		return nil, 0, errors.New("SIP message over TCP without Content-Length")
	case m.ContentLength > maxSIPBody:
		return nil, 0, fmt.Errorf("SIP body of %d bytes exceeds %d", m.ContentLength, maxSIPBody)
	case stream && len(rest) < m.ContentLength:
		return nil, 0, errIncomplete
	}
	n := len(rest)
	if m.ContentLength >= 0 && m.ContentLength < n {
		n = m.ContentLength
	}
	if n > maxSIPBody {
		n = maxSIPBody
	}
	m.Body = bytes.Clone(rest[:n])
	return m, end + n, nil
}

// parseHead reads the start line and headers.
func (m *sipMsg) parseHead(h []byte) error {
	lines := splitLines(h)
	if len(lines) == 0 {
		return errors.New("empty SIP message")
	}
	if err := m.parseStart(lines[0]); err != nil {
		return err
	}
	var name, value string
	count := 0
	flush := func() error {
		if name == "" {
			return nil
		}
		count++
		if count > maxHeaders {
			return fmt.Errorf("more than %d SIP headers", maxHeaders)
		}
		return m.setHeader(name, value)
	}
	for _, l := range lines[1:] {
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' { // folded continuation (RFC 3261 7.3.1)
			if name == "" {
				return errors.New("SIP header continuation without a header")
			}
			value += " " + strings.TrimSpace(l)
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return fmt.Errorf("malformed SIP header line %q", clip(l, 40))
		}
		name = strings.ToLower(strings.TrimSpace(k))
		if full, ok := compact[name]; ok {
			name = full
		}
		value = strings.TrimSpace(v)
	}
	if err := flush(); err != nil {
		return err
	}
	if m.CallID == "" {
		return errors.New("SIP message without Call-ID")
	}
	if m.CSeqMethod == "" {
		return errors.New("SIP message without CSeq")
	}
	return nil
}

func (m *sipMsg) parseStart(l string) error {
	if rest, ok := strings.CutPrefix(l, "SIP/2.0 "); ok {
		code, reason, _ := strings.Cut(rest, " ")
		st, err := strconv.Atoi(code)
		if err != nil || st < 100 || st > 699 {
			return fmt.Errorf("bad SIP status line %q", clip(l, 40))
		}
		m.Status, m.Reason = st, reason
		return nil
	}
	f := strings.Fields(l)
	if len(f) != 3 || f[2] != "SIP/2.0" || !isToken(f[0]) {
		return fmt.Errorf("bad SIP request line %q", clip(l, 40))
	}
	m.Request, m.Method, m.URI = true, f[0], f[1]
	return nil
}

// setHeader keeps the first value of each header audit reads.
func (m *sipMsg) setHeader(name, value string) error {
	first := func(dst *string) {
		if *dst == "" {
			*dst = value
		}
	}
	switch name {
	case "call-id":
		first(&m.CallID)
	case "from":
		first(&m.From)
	case "to":
		first(&m.To)
	case "via":
		v, _, _ := strings.Cut(value, ",")
		first(&m.Via)
		if m.Via == value {
			m.Via = strings.TrimSpace(v)
		}
	case "user-agent":
		first(&m.UserAgent)
	case "server":
		first(&m.Server)
	case "content-type":
		first(&m.ContentType)
	case "content-length":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Errorf("bad Content-Length %q", clip(value, 20))
		}
		if m.ContentLength < 0 {
			m.ContentLength = n
		}
	case "cseq":
		if m.CSeqMethod != "" {
			return nil
		}
		num, meth, ok := strings.Cut(value, " ")
		n, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			return fmt.Errorf("bad CSeq %q", clip(value, 30))
		}
		m.CSeqNum, m.CSeqMethod = uint32(n), strings.TrimSpace(meth)
	}
	return nil
}

// splitLines splits on LF, dropping a CR before it.
func splitLines(b []byte) []string {
	s := string(b)
	out := strings.Split(s, "\n")
	for i, l := range out {
		out[i] = strings.TrimSuffix(l, "\r")
	}
	return out
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// clip shortens s for an error message and keeps it printable.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

// uriUser returns the user part of the SIP URI in a From or To value
// ("Alice" <sip:alice@host>;tag=x gives alice), or "" when there is none.
func uriUser(v string) string {
	if i := strings.IndexByte(v, '<'); i >= 0 {
		v = v[i+1:]
		if j := strings.IndexByte(v, '>'); j >= 0 {
			v = v[:j]
		}
	} else if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	v = strings.TrimSpace(v)
	lower := strings.ToLower(v)
	for _, p := range []string{"sip:", "sips:", "tel:"} {
		if strings.HasPrefix(lower, p) {
			v = v[len(p):]
			break
		}
	}
	if !strings.Contains(v, "@") {
		// tel: URI or a bare number: the whole of it, parameters cut.
		v, _, _ = strings.Cut(v, ";")
		if strings.Contains(v, ":") {
			return ""
		}
		return v
	}
	user, _, _ := strings.Cut(v, "@")
	user, _, _ = strings.Cut(user, ";")
	return user
}

// viaTransport returns the transport of a Via value ("SIP/2.0/TLS host"
// gives "tls"), or "".
func viaTransport(via string) string {
	f := strings.Fields(via)
	if len(f) == 0 {
		return ""
	}
	p := strings.Split(f[0], "/")
	if len(p) != 3 {
		return ""
	}
	return strings.ToLower(p[2])
}
