package b2bua

import "testing"

// A Refer-To without angle brackets has its parameters as the header's
// (RFC 3261 section 20); its transport is read as the URI's, as phones
// (baresip) mean it, and nothing else is.
func TestReferToURI(t *testing.T) {
	for _, tc := range []struct {
		in, transport string // transport "" when the URI has none
		host          string
		params        int // the URI's parameters
	}{
		{"<sip:200@192.0.2.7:5061;transport=tls>", "tls", "192.0.2.7", 1},
		{"sip:192.0.2.7:5061;transport=tls", "tls", "192.0.2.7", 1},
		{"sip:200@192.0.2.7;TRANSPORT=tcp", "tcp", "192.0.2.7", 1},
		{"sip:200@192.0.2.7;transport=tcp;x-foo=1", "tcp", "192.0.2.7", 1},
		{"sip:200@192.0.2.7;x-foo=1", "", "192.0.2.7", 0},
		{"sip:200@192.0.2.7", "", "192.0.2.7", 0},
		{"<sip:200@192.0.2.7>;transport=tls", "", "192.0.2.7", 0},
		{"<sip:200@192.0.2.7;transport=udp>;transport=tls", "udp", "192.0.2.7", 1},
		{"Bob <sip:200@192.0.2.7;transport=tcp?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>", "tcp", "192.0.2.7", 1},
	} {
		u, err := referToURI(tc.in)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		tp, _ := u.UriParams.Get("transport")
		if tp != tc.transport || u.Host != tc.host || u.UriParams.Length() != tc.params {
			t.Errorf("%s: host %q transport %q, %d params; want %q %q %d", tc.in, u.Host, tp, u.UriParams.Length(),
				tc.host, tc.transport, tc.params)
		}
	}
	if _, err := referToURI(""); err == nil {
		t.Error("an empty Refer-To parsed")
	}
}
