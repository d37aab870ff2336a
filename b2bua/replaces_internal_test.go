package b2bua

import "testing"

// parseReplaces reads RFC 3891's Replaces: a Call-ID, to-tag and from-tag
// (required, once each), early-only, other parameters dropped.
func TestParseReplaces(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for a refusal
	}{
		{"98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff", "98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r"},
		{" abc ; to-tag = 1 ; from-tag = 2 ; early-only", "abc;to-tag=1;from-tag=2;early-only"},
		{"abc;to-tag=1;from-tag=2;x-vendor=7", "abc;to-tag=1;from-tag=2"},
		{"abc;TO-TAG=1;From-Tag=2", "abc;to-tag=1;from-tag=2"},
		{"abc;to-tag=1", ""},
		{"abc;from-tag=2", ""},
		{";to-tag=1;from-tag=2", ""},
		{"a b;to-tag=1;from-tag=2", ""},
		{"abc@;to-tag=1;from-tag=2", ""},
		{"abc;to-tag=1;to-tag=3;from-tag=2", ""},
		{"abc;to-tag=;from-tag=2", ""},
		{"abc;to-tag=1<;from-tag=2", ""},
		{"abc,def;to-tag=1;from-tag=2", ""},
		{"", ""},
	} {
		r, err := parseReplaces(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: parsed as %q, want a refusal", tc.in, r)
		case tc.want != "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && r.String() != tc.want:
			t.Errorf("%q: %q, want %q", tc.in, r, tc.want)
		}
	}
}
