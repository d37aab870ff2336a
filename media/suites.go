package media

import (
	"github.com/pion/dtls/v3"
	"github.com/pion/srtp/v3"
)

// srtpSuite is one SRTP crypto suite parapet implements, with everything
// media needs to know of it. srtpSuites is the only table of them: SDES
// keys (sdes.go), DTLS-SRTP profiles (dtls.go) and the relay's SRTP
// contexts (relay.go) all read it, and a test holds it to
// policy.SupportedSuites.
type srtpSuite struct {
	// name is the suite's name in the SDES registry (RFC 4568 section 6.2;
	// the AEAD suites are RFC 7714's, registered in its section 14.1).
	name string
	// keyLen and saltLen are the master key and salt lengths in bytes.
	keyLen, saltLen int
	// profile is pion/srtp's protection profile for the suite.
	profile srtp.ProtectionProfile
	// dtls is the DTLS-SRTP protection profile that negotiates the suite
	// (RFC 5764 section 4.1.2, RFC 7714 section 14.2).
	dtls dtls.SRTPProtectionProfile
}

// srtpSuites lists the suites parapet implements, strongest first (the
// order of policy.SupportedSuites). Every other suite name, NULL_* above
// all, parses but is left for policy to refuse by name.
var srtpSuites = []srtpSuite{
	// RFC 7714 section 14.1: 256-bit key, 96-bit salt.
	{"AEAD_AES_256_GCM", 32, 12, srtp.ProtectionProfileAeadAes256Gcm, dtls.SRTP_AEAD_AES_256_GCM},
	// RFC 7714 section 14.1: 128-bit key, 96-bit salt.
	{"AEAD_AES_128_GCM", 16, 12, srtp.ProtectionProfileAeadAes128Gcm, dtls.SRTP_AEAD_AES_128_GCM},
	// RFC 4568 section 6.2.1: 128-bit key, 112-bit salt.
	{"AES_CM_128_HMAC_SHA1_80", 16, 14, srtp.ProtectionProfileAes128CmHmacSha1_80, dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	// RFC 4568 section 6.2.2.
	{"AES_CM_128_HMAC_SHA1_32", 16, 14, srtp.ProtectionProfileAes128CmHmacSha1_32, dtls.SRTP_AES128_CM_HMAC_SHA1_32},
}

// suiteNamed returns the supported suite named name. The match is exact:
// suite names are registered, and written, in upper case.
func suiteNamed(name string) (*srtpSuite, bool) {
	for i := range srtpSuites {
		if srtpSuites[i].name == name {
			return &srtpSuites[i], true
		}
	}
	return nil, false
}

// suiteOfProfile returns the name of the suite DTLS-SRTP profile p
// negotiates.
func suiteOfProfile(p dtls.SRTPProtectionProfile) (string, bool) {
	for _, s := range srtpSuites {
		if s.dtls == p {
			return s.name, true
		}
	}
	return "", false
}
