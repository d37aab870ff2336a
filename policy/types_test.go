package policy

import (
	"strings"
	"testing"
)

// The vocabulary of the configuration language parses what it prints and
// refuses everything else with a message naming the choices.
func TestVocabularyRoundTrips(t *testing.T) {
	for _, s := range []string{"off", "allow", "require"} {
		if r, err := ParseRequirement(s); err != nil || r.String() != s {
			t.Errorf("requirement %q: %v %v", s, r, err)
		}
	}
	for _, s := range []string{"enforce", "observe"} {
		if m, err := ParseMode(s); err != nil || m.String() != s {
			t.Errorf("mode %q: %v %v", s, m, err)
		}
	}
	for _, s := range []string{"udp", "tcp", "tls"} {
		if tr, err := ParseTransport(strings.ToUpper(s)); err != nil || tr.String() != s {
			t.Errorf("transport %q: %v %v", s, tr, err)
		}
	}
	for _, s := range []string{"sdes", "dtls"} {
		if k, err := ParseKeyExchange(s); err != nil || k.String() != s {
			t.Errorf("key exchange %q: %v %v", s, k, err)
		}
	}
	if KeyExchangeNone.String() != "none" {
		t.Errorf("KeyExchangeNone prints %q", KeyExchangeNone)
	}
	for _, s := range []string{"none", "request", "require"} {
		if c, err := ParseClientAuth(s); err != nil || c.String() != s {
			t.Errorf("client_auth %q: %v %v", s, c, err)
		}
	}
	for in, want := range map[string]string{"1.2": "TLS1.2", "TLS1.3": "TLS1.3", "1.0": "TLS1.0", "1.1": "TLS1.1"} {
		if v, err := ParseTLSVersion(in); err != nil || v.String() != want {
			t.Errorf("TLS version %q: %v %v", in, v, err)
		}
	}
	if TLSVersion(0x0300).String() != "SSL3.0" || TLSVersion(0x7f1c).String() != "0x7f1c" || TLSVersion(0).String() != "" {
		t.Error("unusual TLS versions print wrongly")
	}
	for _, s := range SupportedSuites {
		if su, err := ParseSuite(string(s)); err != nil || su != s {
			t.Errorf("suite %s: %v", s, err)
		}
	}

	for name, err := range map[string]error{
		"requirement":  second(ParseRequirement("maybe")),
		"mode":         second(ParseMode("audit")),
		"transport":    second(ParseTransport("sctp")),
		"key exchange": second(ParseKeyExchange("zrtp")),
		"client_auth":  second(ParseClientAuth("optional")),
		"TLS version":  second(ParseTLSVersion("1.4")),
		"suite":        second(ParseSuite("AES_256_CM_HMAC_SHA1_80")),
	} {
		if err == nil || !strings.Contains(err.Error(), "want") && !strings.Contains(err.Error(), "supported") {
			t.Errorf("%s: error %v does not say what is accepted", name, err)
		}
	}
	if _, err := ParseSuite("NULL_HMAC_SHA1_80"); err == nil || !strings.Contains(err.Error(), "never allowed") {
		t.Errorf("NULL suite: %v", err)
	}
	for _, s := range []Stage{StageHandshake, StageAdmission, StageOffer, StageAnswer, StageReoffer} {
		var back Stage
		if b, _ := s.MarshalText(); back.UnmarshalText(b) != nil || back != s {
			t.Errorf("stage %s does not round-trip", s)
		}
	}
	if err := new(Stage).UnmarshalText([]byte("ringing")); err == nil {
		t.Error("unknown stage accepted")
	}
	for _, c := range Controls {
		if c.Title() == "" {
			t.Errorf("control %s has no title", c)
		}
	}
}

func second[T any](_ T, err error) error { return err }
