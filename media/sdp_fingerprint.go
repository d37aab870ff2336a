package media

// DTLS-SRTP attributes of an SDP (RFC 5763 section 5): reading and writing
// a=fingerprint (RFC 8122) and reading a=setup (RFC 4145).

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
)

// DTLS-SRTP attributes (RFC 5763 section 5): a=fingerprint (RFC 8122) and
// a=setup (RFC 4145).
const (
	maxFingerprints   = 8  // a=fingerprint lines read per level, session or media
	maxFingerprintLen = 64 // bytes, a SHA-512 digest
)

// Connection roles (RFC 4145 section 4).
const (
	setupActive   = "active"
	setupPassive  = "passive"
	setupActPass  = "actpass"
	setupHoldConn = "holdconn"
)

// dtlsAttrs are the DTLS-SRTP attributes of one level, session or media.
type dtlsAttrs struct {
	present      bool // an a=fingerprint line, usable or not
	fingerprints []Fingerprint
	problem      string // the first reason a fingerprint line was left out
	setup        string // "" when absent or invalid
}

// readDTLS reads the a=fingerprint and a=setup lines of one level. Lines past
// maxFingerprints are not read; a=setup is the first one, lower-cased, and a
// value other than RFC 4145's four counts as absent.
func readDTLS(attrs []sdp.Attribute) dtlsAttrs {
	var d dtlsAttrs
	problem := func(p string) {
		if d.problem == "" {
			d.problem = p
		}
	}
	n, setupSeen := 0, false
	for _, a := range attrs {
		switch a.Key {
		case "fingerprint":
			d.present = true
			if n++; n > maxFingerprints {
				problem(fmt.Sprintf("more than %d fingerprints, the rest are ignored", maxFingerprints))
				continue
			}
			f, err := parseFingerprint(a.Value)
			if err != nil {
				problem(fmt.Sprintf("fingerprint %d: %v", n, err))
				continue
			}
			d.fingerprints = append(d.fingerprints, f)
		case "setup":
			if !setupSeen {
				setupSeen = true
				d.setup = setupRole(a.Value)
			}
		}
	}
	return d
}

// parseFingerprint reads an a=fingerprint value (RFC 8122 section 5):
//
//	fingerprint-attribute = "fingerprint" ":" hash-func SP fingerprint
//	hash-func             = "sha-1" / "sha-224" / "sha-256" / "sha-384" / "sha-512" / "md5" / "md2" / token
//	fingerprint           = 2UHEX *(":" 2UHEX)
//
// The hash function is matched without regard to case and kept lower-cased;
// lower-case hex is accepted too. Only the SHA-1 and SHA-2 functions are
// read, with the digest length each implies: RFC 8122 forbids MD2 and MD5,
// and parapet knows no other. Errors echo only a known hash function's name.
func parseFingerprint(v string) (Fingerprint, error) {
	f := splitWSP(v)
	if len(f) != 2 {
		return Fingerprint{}, errors.New("not <hash function> <fingerprint>")
	}
	if !isToken(f[0]) {
		return Fingerprint{}, errors.New("hash function is not a token")
	}
	hash := strings.ToLower(f[0])
	if hash == "md2" || hash == "md5" {
		return Fingerprint{}, fmt.Errorf("hash function %s is not allowed (RFC 8122 section 5)", hash)
	}
	n, ok := fingerprintLen(hash)
	if !ok {
		return Fingerprint{}, errors.New("hash function is not supported")
	}
	if len(f[1]) > 3*maxFingerprintLen-1 {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is longer than %d bytes", hash, maxFingerprintLen)
	}
	b, ok := decodeFingerprint(f[1])
	if !ok {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is not hex bytes separated by ':'", hash)
	}
	if len(b) != n {
		return Fingerprint{}, fmt.Errorf("%s fingerprint is %d bytes, needs %d", hash, len(b), n)
	}
	return Fingerprint{Hash: hash, Value: b}, nil
}

// fingerprintLen is the digest length of the hash functions parapet reads
// fingerprints of (RFC 8122 section 5, names from the IANA Hash Function
// Textual Names registry).
func fingerprintLen(hash string) (int, bool) {
	switch hash {
	case "sha-1":
		return 20, true
	case "sha-224":
		return 28, true
	case "sha-256":
		return 32, true
	case "sha-384":
		return 48, true
	case "sha-512":
		return 64, true
	}
	return 0, false
}

// decodeFingerprint decodes 2HEXDIG *(":" 2HEXDIG), either case.
func decodeFingerprint(s string) ([]byte, bool) {
	if len(s)%3 != 2 {
		return nil, false
	}
	out := make([]byte, 0, (len(s)+1)/3)
	for i := 0; i < len(s); i += 3 {
		if i > 0 && s[i-1] != ':' {
			return nil, false
		}
		hi, ok1 := hexNibble(s[i])
		lo, ok2 := hexNibble(s[i+1])
		if !ok1 || !ok2 {
			return nil, false
		}
		out = append(out, hi<<4|lo)
	}
	return out, true
}

func hexNibble(ch byte) (byte, bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', true
	case ch >= 'a' && ch <= 'f':
		return ch - 'a' + 10, true
	case ch >= 'A' && ch <= 'F':
		return ch - 'A' + 10, true
	}
	return 0, false
}

// fingerprintString writes a fingerprint value: the hash function in lower
// case, a space and the digest in upper-case hex pairs separated by ':'.
func fingerprintString(f Fingerprint) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(f.Hash) + 3*len(f.Value))
	b.WriteString(strings.ToLower(f.Hash))
	b.WriteByte(' ')
	for i, v := range f.Value {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteByte(digits[v>>4])
		b.WriteByte(digits[v&0x0f])
	}
	return b.String()
}

func cloneFingerprints(fs []Fingerprint) []Fingerprint {
	if fs == nil {
		return nil
	}
	out := make([]Fingerprint, len(fs))
	for i, f := range fs {
		out[i] = Fingerprint{Hash: f.Hash, Value: slices.Clone(f.Value)}
	}
	return out
}

// setupRole returns an a=setup value lower-cased when it is one of RFC 4145
// section 4's roles, else "".
func setupRole(v string) string {
	v = strings.Trim(v, " \t")
	for _, r := range []string{setupActive, setupPassive, setupActPass, setupHoldConn} {
		if strings.EqualFold(v, r) {
			return r
		}
	}
	return ""
}
