package b2bua

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want string }{
		{"pw\n", "pw"}, {"pw\r\nsecond line\n", "pw"}, {"pw", "pw"}, {"\n", ""}, {" spaced pw \n", " spaced pw "},
	} {
		p := filepath.Join(dir, "p")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := readPassword(p); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.content, got, tc.want)
		}
	}
	if got := readPassword(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

func TestGrantedLifetime(t *testing.T) {
	const tok = "abc123"
	for _, tc := range []struct {
		name    string
		headers []string
		want    time.Duration
	}{
		{"contact expires wins", []string{"Contact: <sip:other@192.0.2.9>;expires=50", "Contact: <sip:clinic@127.0.0.1:5061;line=abc123>;expires=120", "Expires: 900"}, 120 * time.Second},
		{"expires header", []string{"Contact: <sip:other@192.0.2.9>;expires=50", "Expires: 900"}, 900 * time.Second},
		{"as asked", nil, time.Hour},
	} {
		res := sip.NewResponse(200, "OK")
		for _, h := range tc.headers {
			name, value, _ := cutHeader(h)
			if name == "Contact" {
				var c sip.ContactHeader
				c.Params = sip.NewParams()
				if _, err := sip.ParseAddressValue(value, &c.Address, &c.Params); err != nil {
					t.Fatal(err)
				}
				res.AppendHeader(&c)
				continue
			}
			res.AppendHeader(sip.NewHeader(name, value))
		}
		if got := grantedLifetime(res, tok, time.Hour); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func cutHeader(h string) (name, value string, ok bool) {
	for i := range len(h) {
		if h[i] == ':' {
			return h[:i], h[i+2:], true
		}
	}
	return h, "", false
}

func TestHeaderSeconds(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  time.Duration
		ok    bool
	}{{"120", 120 * time.Second, true}, {"18000;duration=3600", 18000 * time.Second, true}, {"5 (busy)", 5 * time.Second, true}, {"soon", 0, false}} {
		res := sip.NewResponse(503, "Service Unavailable")
		res.AppendHeader(sip.NewHeader("Retry-After", tc.value))
		if got, ok := headerSeconds(res, "Retry-After"); got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v", tc.value, got, ok)
		}
	}
}

func TestRawRequestURI(t *testing.T) {
	u, ok := rawRequestURI([]byte("INVITE sips:clinic@127.0.0.1:5061;line=abc SIP/2.0\r\nVia: x\r\n\r\n"))
	if tok, _ := u.UriParams.Get("line"); !ok || tok != "abc" || u.User != "clinic" {
		t.Fatalf("%+v %v", u, ok)
	}
	if _, ok := rawRequestURI([]byte("garbage\r\n")); ok {
		t.Fatal("garbage parsed")
	}
}

// The UDP gate and the handlers admit a request whose Request-URI carries
// the line token of one of the zone's trunks, and only those.
func TestAdmitsLine(t *testing.T) {
	ts := newTrunkSet()
	req := func(uri string) []byte {
		return []byte("OPTIONS " + uri + " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1\r\n\r\n")
	}
	if ts.admitsRawLine("carrier", req("sip:clinic@127.0.0.1;line=tok1")) {
		t.Fatal("admitted without trunks")
	}
	ts.lines.Store(&map[string]lineOf{"tok1": {zone: "carrier", route: "out"}})
	for _, tc := range []struct {
		zone, uri string
		want      bool
	}{
		{"carrier", "sip:clinic@127.0.0.1:5060;line=tok1", true},
		{"carrier", "sips:clinic@127.0.0.1;transport=tls;line=tok1", true},
		{"pbx", "sip:clinic@127.0.0.1;line=tok1", false},
		{"carrier", "sip:clinic@127.0.0.1;line=tok2", false},
		{"carrier", "sip:clinic@127.0.0.1;line=", false},
		{"carrier", "sip:clinic@127.0.0.1", false},
	} {
		if got := ts.admitsRawLine(tc.zone, req(tc.uri)); got != tc.want {
			t.Errorf("%s %s: %v", tc.zone, tc.uri, got)
		}
	}
	var u sip.Uri
	if err := sip.ParseUri("sip:clinic@127.0.0.1;line=tok1", &u); err != nil {
		t.Fatal(err)
	}
	if route, ok := ts.admitsLine("carrier", &u); !ok || route != "out" {
		t.Errorf("admitsLine: %q %v", route, ok)
	}
}
