package media

// Descriptions as logs and records see them: summaries without keys or the
// raw body.

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

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
	formatRedacted(f, verb, d.GoString(), d.String())
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

// formatRedacted writes a value that holds key material for fmt: its
// GoString form for %#v, else its redacted summary, whatever the verb.
func formatRedacted(f fmt.State, verb rune, goString, summary string) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, goString)
		return
	}
	_, _ = io.WriteString(f, summary)
}
