package media

import (
	"slices"
	"testing"

	"github.com/parapet-sbc/parapet/policy"
)

// media implements exactly the suites policy lets a zone allow, in the
// same order: a suite policy accepts that media cannot key would fail
// calls, and one media keys that policy does not know could never be
// judged.
func TestSuitesAreSupportedSuites(t *testing.T) {
	var got, want []string
	for _, s := range srtpSuites {
		got = append(got, s.name)
	}
	for _, s := range policy.SupportedSuites {
		want = append(want, string(s))
	}
	if !slices.Equal(got, want) {
		t.Errorf("media's suites %q, policy.SupportedSuites %q", got, want)
	}
}

// Each row agrees with pion: key and salt lengths with its SRTP profile,
// and its DTLS-SRTP profile maps back to it alone.
func TestSuiteTable(t *testing.T) {
	for _, s := range srtpSuites {
		k, err := s.profile.KeyLen()
		if err != nil || k != s.keyLen {
			t.Errorf("%s: pion key length %d (%v), table %d", s.name, k, err, s.keyLen)
		}
		salt, err := s.profile.SaltLen()
		if err != nil || salt != s.saltLen {
			t.Errorf("%s: pion salt length %d (%v), table %d", s.name, salt, err, s.saltLen)
		}
		if name, ok := suiteOfProfile(s.dtls); !ok || name != s.name {
			t.Errorf("%s: DTLS-SRTP profile %#04x maps back to %q", s.name, uint16(s.dtls), name)
		}
		if su, ok := suiteNamed(s.name); !ok || su.name != s.name || !SupportedSuite(s.name) {
			t.Errorf("%s: not found by name", s.name)
		}
	}
	for _, name := range []string{"NULL_HMAC_SHA1_80", "aes_cm_128_hmac_sha1_80", "F8_128_HMAC_SHA1_80", ""} {
		if SupportedSuite(name) {
			t.Errorf("%q supported", name)
		}
	}
}
