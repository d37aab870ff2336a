package b2bua

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// The handler sipgo's logs go through redacts key material and demotes
// sipgo's benign close-race warnings to debug.
func TestRedactHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})})

	log.Warn("TCP ref went negative", "ref", -1)
	if buf.Len() != 0 {
		t.Errorf("benign sipgo warning logged at info level: %s", buf.String())
	}
	log.Warn("something else", "body", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
	out := buf.String()
	if !strings.Contains(out, "something else") || strings.Contains(out, "WVNfX19zZW1jdGwg") {
		t.Errorf("other warnings must be logged, with keys redacted: %s", out)
	}

	// A TCP read that began with the key: sipgo logs the chunk it could
	// not parse, and quotes it in the error.
	buf.Reset()
	log.Error("failed to parse", "error", "transmission beginning 'WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31' is not a SIP message",
		"data", "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\nhello world\r\n")
	out = buf.String()
	if !strings.Contains(out, "failed to parse") || strings.Contains(out, "WVNfX19zZW1jdGwg") || !strings.Contains(out, "bytes of SIP data withheld") {
		t.Errorf("wire data or a key logged: %s", out)
	}
	// Hex identifiers (call ids, tags) stay readable.
	buf.Reset()
	log.Warn("tx", "key", "z9hg4bk-0123456789abcdef0123456789abcdef", "call", "3f2a9c0e5b7d41a68e2c90b1d4f7a6c3@parapet")
	if out := buf.String(); !strings.Contains(out, "0123456789abcdef0123456789abcdef") || !strings.Contains(out, "3f2a9c0e5b7d41a68e2c90b1d4f7a6c3") {
		t.Errorf("identifiers masked: %s", out)
	}

	buf.Reset()
	debug := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Warn("TCP ref went negative", "ref", -1)
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("demoted warning at debug level: %q", buf.String())
	}
}
