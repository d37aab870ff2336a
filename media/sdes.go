package media

// SDES: SDP security descriptions for media streams (RFC 4568).
//
// Everything here treats key material as radioactive: no error, Problem text,
// String, GoString, LogValue or fmt verb ever shows a key byte or its base64.

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/pion/srtp/v3"
)

// ErrUnsupportedSuite is returned (wrapped) for a crypto suite parapet does not
// implement.
var ErrUnsupportedSuite = errors.New("crypto suite not supported")

// Bounds on what a crypto attribute may carry. RFC 4568 section 9.1 leaves
// the lengths open; these keep hostile input small.
const (
	maxTag       = 999999999 // tag = 1*9DIGIT
	maxSuiteLen  = 64
	maxKeyParams = 16
)

// suiteSpec is the master key and salt length of a supported suite and its pion
// profile (from srtpSuites).
func suiteSpec(suite string) (keyLen, saltLen int, p srtp.ProtectionProfile, ok bool) {
	su, ok := suiteNamed(suite)
	if !ok {
		return 0, 0, 0, false
	}
	return su.keyLen, su.saltLen, su.profile, true
}

// SupportedSuite reports whether parapet implements the suite. The match is
// exact: suite names are registered, and written, in upper case.
func SupportedSuite(suite string) bool {
	_, _, _, ok := suiteSpec(suite)
	return ok
}

// KeyLen returns the master key+salt length of a supported suite: 30 for the
// AES_CM_128 suites, 28 for AEAD_AES_128_GCM and 44 for AEAD_AES_256_GCM.
func KeyLen(suite string) (int, bool) {
	k, s, _, ok := suiteSpec(suite)
	return k + s, ok
}

// Profile maps a supported suite to its pion protection profile.
func Profile(suite string) (srtp.ProtectionProfile, error) {
	_, _, p, ok := suiteSpec(suite)
	if !ok {
		return 0, fmt.Errorf("srtp profile for %s: %w", printableSuite(suite), ErrUnsupportedSuite)
	}
	return p, nil
}

// NewCrypto makes a line with a fresh master key and salt from crypto/rand,
// as an offerer or answerer must for every stream (RFC 4568 section 6.1).
func NewCrypto(tag int, suite string) (Crypto, error) {
	if tag < 0 || tag > maxTag {
		return Crypto{}, fmt.Errorf("new crypto: tag %d is not 0 to %d", tag, maxTag)
	}
	n, ok := KeyLen(suite)
	if !ok {
		return Crypto{}, fmt.Errorf("new crypto %s: %w", printableSuite(suite), ErrUnsupportedSuite)
	}
	key := make([]byte, n)
	if _, err := rand.Read(key); err != nil {
		return Crypto{}, fmt.Errorf("new crypto: read random key: %w", err)
	}
	return Crypto{Tag: tag, Suite: suite, Key: key}, nil
}

// SplitKey returns copies of the master key and the master salt for the suite
// (RFC 4568 section 6.1: the inline key is the key concatenated with the salt).
func (c Crypto) SplitKey() (key, salt []byte, err error) {
	k, s, _, ok := suiteSpec(c.Suite)
	if !ok {
		return nil, nil, fmt.Errorf("split key for %s: %w", printableSuite(c.Suite), ErrUnsupportedSuite)
	}
	if len(c.Key) != k+s {
		return nil, nil, fmt.Errorf("split key: key is %d bytes, %s needs %d", len(c.Key), c.Suite, k+s)
	}
	key = append([]byte(nil), c.Key[:k]...)
	salt = append([]byte(nil), c.Key[k:]...)
	return key, salt, nil
}

// Marshal writes the attribute value (what follows "a=crypto:"):
//
//	<tag> <suite> inline:<base64 key||salt>[|lifetime] [session-params]
//
// The key is written as PADDED standard base64 (RFC 4568 section 9.1 refers to
// RFC 3548 base64, which pads): baresip 1.0.0 decodes an unpadded AEAD key two
// bytes short. An MKI is never written; parapet does not use MKIs, and a Crypto
// with MKI set is written without one.
func (c Crypto) Marshal() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(c.Suite)
	b.WriteString(" inline:")
	b.WriteString(base64.StdEncoding.EncodeToString(c.Key))
	if c.Lifetime != "" {
		b.WriteByte('|')
		b.WriteString(c.Lifetime)
	}
	for _, p := range c.Params {
		b.WriteByte(' ')
		b.WriteString(p)
	}
	return b.String()
}

// GoString keeps %#v from printing the key.
func (c Crypto) GoString() string { return "media.Crypto{" + cryptoRedacted(c) + "}" }

// Format makes every fmt verb (%v, %+v, %#v, %s, %d, %x, ...) print the
// redacted form, so no verb can reach the key bytes.
func (c Crypto) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, c.GoString(), cryptoRedacted(c))
}

// cryptoRedacted describes a line without its key, e.g.
// "tag 1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>". Fields that do not have
// the form the grammar allows are not echoed: a hand-built Crypto could hold
// anything in them.
func cryptoRedacted(c Crypto) string {
	var b strings.Builder
	b.WriteString("tag ")
	b.WriteString(strconv.Itoa(c.Tag))
	b.WriteByte(' ')
	b.WriteString(printableSuite(c.Suite))
	b.WriteString(" inline:<redacted>")
	if c.Lifetime != "" {
		if validLifetime(c.Lifetime) {
			b.WriteString("|" + c.Lifetime)
		} else {
			b.WriteString("|<invalid lifetime>")
		}
	}
	if c.MKI {
		b.WriteString("|<MKI>")
	}
	for _, p := range c.Params {
		b.WriteByte(' ')
		b.WriteString(printableParam(p))
	}
	return b.String()
}

// String describes the line and its verdict without the key.
func (l CryptoLine) String() string {
	s := cryptoRedacted(l.Crypto)
	if len(l.Unsafe) > 0 {
		s += " (unsafe: " + strings.Join(l.Unsafe, ",") + ")"
	}
	if l.Problem != "" {
		s += " (problem: " + l.Problem + ")"
	}
	return s
}

// GoString keeps %#v from printing the key.
func (l CryptoLine) GoString() string { return "media.CryptoLine{" + l.String() + "}" }

// LogValue keeps the key out of structured logs.
func (l CryptoLine) LogValue() slog.Value { return slog.StringValue(l.String()) }

// Format makes every fmt verb print the redacted form.
func (l CryptoLine) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, l.GoString(), l.String())
}

// ParseCrypto parses the value of an a=crypto attribute (what follows
// "crypto:"), RFC 4568 section 9.1:
//
//	tag 1*WSP crypto-suite 1*WSP key-params *(1*WSP session-param)
//
// It is liberal in whitespace and strict in content. It returns an error only
// when the line cannot be read at all (no tag, no suite, no inline: key, bad
// base64, malformed lifetime or MKI); the error never contains key material.
// A line that reads but cannot be used (MKI, several keys, wrong key length,
// KDR != 0, unknown mandatory parameters) is not an error here: ParseSDP
// reports those in CryptoLine.Problem. Suites parapet does not implement parse
// normally; refusing them is policy's job.
//
// When the line carries several master keys, the first is returned.
func ParseCrypto(value string) (Crypto, error) {
	c, _, err := parseCrypto(value)
	return c, err
}

// parseCrypto is ParseCrypto, also reporting whether the line had more than
// one master key.
func parseCrypto(value string) (c Crypto, severalKeys bool, err error) {
	for i := 0; i < len(value); i++ {
		// The whole attribute is visible US-ASCII and whitespace (RFC 4568
		// section 9.1: base64, DIGIT, ALPHA, VCHAR and WSP only).
		if ch := value[i]; (ch < 0x20 && ch != '\t') || ch >= 0x7f {
			return Crypto{}, false, errors.New("parse crypto: invalid character")
		}
	}
	fields := splitWSP(value)
	if len(fields) == 0 {
		return Crypto{}, false, errors.New("parse crypto: empty attribute")
	}

	// tag = 1*9DIGIT
	tag, ok := parseTag(fields[0])
	if !ok {
		return Crypto{}, false, errors.New("parse crypto: tag is not 1 to 9 digits")
	}
	c.Tag = tag

	// crypto-suite = 1*(ALPHA / DIGIT / "_")
	if len(fields) < 2 {
		return Crypto{}, false, errors.New("parse crypto: no crypto suite")
	}
	if !validSuite(fields[1]) {
		return Crypto{}, false, errors.New("parse crypto: crypto suite is not a name of letters, digits and '_'")
	}
	c.Suite = fields[1]

	// key-params = key-param *(";" key-param)
	if len(fields) < 3 {
		return Crypto{}, false, errors.New("parse crypto: no key parameters")
	}
	params := strings.Split(fields[2], ";")
	if len(params) > maxKeyParams {
		return Crypto{}, false, fmt.Errorf("parse crypto: more than %d key parameters", maxKeyParams)
	}
	for i, p := range params {
		key, lifetime, mki, err := parseKeyParam(p)
		if err != nil {
			return Crypto{}, false, err
		}
		if i == 0 {
			c.Key, c.Lifetime, c.MKI = key, lifetime, mki
		}
	}

	// *(1*WSP session-param), kept as written; checkLine judges them.
	if len(fields) > 3 {
		c.Params = append([]string(nil), fields[3:]...)
	}
	return c, len(params) > 1, nil
}

// parseKeyParam reads one key-param (RFC 4568 section 9.1):
//
//	key-param     = key-method ":" key-info
//	key-method    = "inline" / key-method-ext
//	srtp-key-info = key-salt ["|" lifetime] ["|" mki]
//	lifetime      = ["2^"] 1*(DIGIT)
//	mki           = mki-value ":" mki-length
func parseKeyParam(p string) (key []byte, lifetime string, mki bool, err error) {
	method, info, found := strings.Cut(p, ":")
	if !found || method == "" {
		return nil, "", false, errors.New("parse crypto: key parameter is not method:info")
	}
	// ABNF string literals are case-insensitive (RFC 5234 section 2.3).
	if !strings.EqualFold(method, "inline") {
		return nil, "", false, errors.New("parse crypto: key method is not inline")
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return nil, "", false, errors.New("parse crypto: key parameter has too many '|' fields")
	}
	key, err = decodeKey(parts[0])
	if err != nil {
		return nil, "", false, err
	}
	rest := parts[1:]
	// With one trailing field, an MKI is told from a lifetime by its ':'.
	if len(rest) > 0 && !strings.Contains(rest[0], ":") {
		if !validLifetime(rest[0]) {
			return nil, "", false, errors.New("parse crypto: lifetime is not digits or 2^digits")
		}
		lifetime = rest[0]
		rest = rest[1:]
	}
	switch len(rest) {
	case 0:
	case 1:
		if !validMKI(rest[0]) {
			return nil, "", false, errors.New("parse crypto: MKI is not value:length with length 1 to 128")
		}
		mki = true
	default:
		return nil, "", false, errors.New("parse crypto: key parameter fields are not key|lifetime|MKI")
	}
	return key, lifetime, mki, nil
}

// decodeKey decodes key-salt = 1*(base64). Padded and unpadded standard
// base64 are both accepted: some implementations (rtpengine) leave padding
// out.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("parse crypto: empty key")
	}
	body := strings.TrimRight(s, "=")
	if len(s)-len(body) > 2 {
		return nil, errors.New("parse crypto: key is not valid base64")
	}
	for i := 0; i < len(body); i++ {
		ch := body[i]
		if !isAlnum(ch) && ch != '+' && ch != '/' {
			return nil, errors.New("parse crypto: key is not valid base64")
		}
	}
	enc := base64.RawStdEncoding
	if len(body) != len(s) {
		enc = base64.StdEncoding
	}
	key, err := enc.DecodeString(s)
	if err != nil || len(key) == 0 {
		// The decoder's error names an input offset; it is dropped so that
		// nothing about the key reaches a log.
		return nil, errors.New("parse crypto: key is not valid base64")
	}
	return key, nil
}

// checkLine fills Problem and Unsafe for a parsed line. An existing Problem is
// kept: the first reason found is the one reported.
func checkLine(l *CryptoLine) {
	problem := func(p string) {
		if l.Problem == "" {
			l.Problem = p
		}
	}
	// RFC 4568 section 6.1 lets a key carry an MKI; parapet keys one
	// context per stream per direction and supports none.
	if l.MKI {
		problem("MKI is not supported")
	}
	if n, ok := KeyLen(l.Suite); ok && len(l.Key) != n {
		problem(fmt.Sprintf("key is %d bytes, %s needs %d", len(l.Key), l.Suite, n))
	}
	for i, p := range l.Params {
		name, value, hasValue := strings.Cut(p, "=")
		switch {
		case hasValue && strings.EqualFold(name, "KDR"):
			// RFC 4568 section 6.3.1: kdr = "KDR=" 1*2DIGIT, 0 to 24; 0 means
			// the session keys are derived once, the only mode parapet runs.
			n, err := strconv.Atoi(value)
			switch {
			case err != nil || len(value) > 2 || n < 0 || n > 24:
				problem("KDR is not a number from 0 to 24")
			case n != 0:
				problem("KDR is not supported")
			}
		case !hasValue && (strings.EqualFold(p, "UNENCRYPTED_SRTP") ||
			strings.EqualFold(p, "UNENCRYPTED_SRTCP") ||
			strings.EqualFold(p, "UNAUTHENTICATED_SRTP")):
			// RFC 4568 sections 6.3.2 and 6.3.3: each turns off part of SRTP's
			// protection.
			l.Unsafe = append(l.Unsafe, strings.ToUpper(p))
		case hasValue && (strings.EqualFold(name, "FEC_ORDER") ||
			strings.EqualFold(name, "FEC_KEY") ||
			strings.EqualFold(name, "WSH")):
			// RFC 4568 sections 6.3.4 to 6.3.6: tolerated, they weaken nothing.
		case strings.HasPrefix(p, "-"):
			// RFC 4568 section 6.3.7: an srtp-session-extension marked
			// optional with a leading '-' may be ignored.
		default:
			// An unknown mandatory extension: the line cannot be honoured.
			// The parameter is not echoed: it could be anything.
			problem(fmt.Sprintf("session parameter %d is unknown", i+1))
		}
	}
}

// parseCryptoLine turns one a=crypto value into a CryptoLine: parsed and
// judged, or with Problem holding the parse error.
func parseCryptoLine(value string) CryptoLine {
	c, several, err := parseCrypto(value)
	if err != nil {
		l := CryptoLine{Problem: err.Error()}
		fields := splitWSP(value)
		if len(fields) > 0 {
			if tag, ok := parseTag(fields[0]); ok {
				l.Tag = tag
			}
		}
		// The second token is kept only when it has the form of a suite
		// name, so a key written where the suite belongs is never kept.
		if len(fields) > 1 && validSuite(fields[1]) {
			l.Suite = fields[1]
		}
		return l
	}
	l := CryptoLine{Crypto: c}
	if several {
		// RFC 4568 section 6.1 allows several keys, told apart by MKI;
		// parapet supports neither.
		l.Problem = "several master keys are not supported"
	}
	checkLine(&l)
	return l
}

// splitWSP splits s on runs of space and horizontal tab (RFC 4568's 1*WSP).
func splitWSP(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
}

func parseTag(s string) (int, bool) {
	if len(s) < 1 || len(s) > 9 || !allDigits(s) {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

func validSuite(s string) bool {
	if s == "" || len(s) > maxSuiteLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' {
			return false
		}
	}
	return true
}

// printableSuite returns the suite when it has the form of a suite name.
func printableSuite(s string) string {
	if validSuite(s) {
		return s
	}
	return "<invalid suite>"
}

// validLifetime checks lifetime = ["2^"] 1*(DIGIT), bounded to 20 digits.
func validLifetime(s string) bool {
	s = strings.TrimPrefix(s, "2^")
	return len(s) >= 1 && len(s) <= 20 && allDigits(s)
}

// validMKI checks mki = mki-value ":" mki-length, mki-length 1 to 128
// (RFC 4568 section 9.1).
func validMKI(s string) bool {
	v, n, ok := strings.Cut(s, ":")
	if !ok || len(v) < 1 || len(v) > 40 || !allDigits(v) || len(n) < 1 || len(n) > 3 || !allDigits(n) {
		return false
	}
	length, err := strconv.Atoi(n)
	return err == nil && length >= 1 && length <= 128
}

// printableParam returns a session parameter in a form safe to log: known
// parameters with their (numeric or enumerated) values, FEC_KEY without its
// key, anything else hidden.
func printableParam(p string) string {
	name, value, hasValue := strings.Cut(p, "=")
	upper := strings.ToUpper(name)
	switch {
	case !hasValue && (upper == "UNENCRYPTED_SRTP" || upper == "UNENCRYPTED_SRTCP" || upper == "UNAUTHENTICATED_SRTP"):
		return upper
	case hasValue && (upper == "KDR" || upper == "WSH"):
		if len(value) <= 10 && allDigits(value) {
			return upper + "=" + value
		}
		return upper + "=<invalid>"
	case hasValue && upper == "FEC_ORDER":
		if v := strings.ToUpper(value); v == "FEC_SRTP" || v == "SRTP_FEC" {
			return upper + "=" + v
		}
		return upper + "=<invalid>"
	case hasValue && upper == "FEC_KEY":
		return "FEC_KEY=<redacted>"
	}
	return "<param>"
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(ch byte) bool {
	return ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
}
