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

	buf.Reset()
	debug := slog.New(&redactHandler{h: slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	debug.Warn("TCP ref went negative", "ref", -1)
	if !strings.Contains(buf.String(), "level=DEBUG") {
		t.Errorf("demoted warning at debug level: %q", buf.String())
	}
}
