package b2bua

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

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

// A Refer-To's Replaces is read escaped (RFC 3261 section 19.1.1) or, as
// some phones send it, not.
func TestReferReplaces(t *testing.T) {
	for _, tc := range []struct {
		refer  string
		ok     bool
		status int
		want   string
	}{
		{"<sip:200@pbx?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2&Require=replaces>", true, 0, "abc@pbx;to-tag=1;from-tag=2"},
		{"<sip:200@pbx;transport=udp?Replaces=abc@pbx;to-tag=1;from-tag=2>", true, 0, "abc@pbx;to-tag=1;from-tag=2"},
		{"<sip:200@pbx?Replaces=abc%3Bto-tag%3D1>", true, 400, ""},
		{"<sip:200@pbx?Replaces=abc%ZZ>", true, 400, ""},
		{"<sip:200@pbx?Require=replaces>", false, 0, ""},
		{"<sip:200@pbx>", false, 0, ""},
	} {
		var u sip.Uri
		if _, err := sip.ParseAddressValue(tc.refer, &u, nil); err != nil {
			t.Fatalf("%s: %v", tc.refer, err)
		}
		r, ok, status, why := referReplaces(&u)
		if ok != tc.ok || status != tc.status || (tc.want != "" && r.String() != tc.want) {
			t.Errorf("%s: %q %v %d %q", tc.refer, r, ok, status, why)
		}
	}
}
