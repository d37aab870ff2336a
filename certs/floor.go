package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrMinVersion is returned (wrapped) when a TLS minimum version below 1.2,
// or one this package does not know, is asked for. parapet never lowers the
// floor and never silently raises a configured value either: the caller has
// to fix the configuration.
var ErrMinVersion = errors.New("tls min version must be TLS 1.2 or TLS 1.3")

// ErrCipherSuite is returned (wrapped) by ParseCiphers for a name that is
// unknown, insecure, not ECDHE with AEAD, or a TLS 1.3 suite.
var ErrCipherSuite = errors.New("cipher suite not allowed")

// SecureCiphers are the TLS 1.2 cipher suites parapet offers and accepts by
// default: ECDHE key exchange (forward secrecy) with an AEAD cipher (AES-GCM
// or ChaCha20-Poly1305), for both ECDSA and RSA certificates. They are also
// the only names ParseCiphers accepts.
//
// TLS 1.3 suites are not listed: Go does not let them be configured, and all
// of them are AEAD.
var SecureCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// applyFloor is the one function that sets a tls.Config's MinVersion, and
// every tls.Config this package builds goes through it. It refuses anything
// but TLS 1.2 and TLS 1.3 and leaves cfg untouched when it does. MaxVersion is
// never set anywhere: Go's maximum follows the standard library.
func applyFloor(cfg *tls.Config, v uint16) error {
	if err := checkFloor(v); err != nil {
		return err
	}
	cfg.MinVersion = v
	return nil
}

// checkFloor reports whether v is an acceptable TLS minimum version.
func checkFloor(v uint16) error {
	switch v {
	case tls.VersionTLS12, tls.VersionTLS13:
		return nil
	}
	return fmt.Errorf("min version %s: %w", versionName(v), ErrMinVersion)
}

// versionName names a TLS version for error messages.
func versionName(v uint16) string {
	if v == 0 {
		return "unset (0)"
	}
	return tls.VersionName(v)
}

// ParseCiphers turns Go cipher suite names (as printed by
// tls.CipherSuiteName) into IDs. An empty list means SecureCiphers.
//
// Only the names in SecureCiphers are accepted; everything else is an error
// wrapping ErrCipherSuite that says why: unknown, insecure (Go's
// tls.InsecureCipherSuites: RC4, 3DES, CBC-SHA256, ...), no forward secrecy
// (static RSA key exchange), CBC mode (no AEAD), or a TLS 1.3 suite (not
// configurable in Go). Names are matched exactly. Duplicates are dropped; the
// order is kept, although Go chooses the suite order itself.
func ParseCiphers(names []string) ([]uint16, error) {
	if len(names) == 0 {
		return slices.Clone(SecureCiphers), nil
	}
	out := make([]uint16, 0, len(names))
	for _, name := range names {
		id, err := parseCipher(name)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// parseCipher maps one name to its ID or explains why it is refused.
func parseCipher(name string) (uint16, error) {
	for _, id := range SecureCiphers {
		if tls.CipherSuiteName(id) == name {
			return id, nil
		}
	}
	for _, cs := range tls.InsecureCipherSuites() {
		if cs.Name == name {
			return 0, fmt.Errorf("cipher suite %q: %w: insecure", name, ErrCipherSuite)
		}
	}
	for _, cs := range tls.CipherSuites() {
		if cs.Name != name {
			continue
		}
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			return 0, fmt.Errorf("cipher suite %q: %w: TLS 1.3 suites are not configurable (Go always uses its own AEAD set)", name, ErrCipherSuite)
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") {
			return 0, fmt.Errorf("cipher suite %q: %w: no forward secrecy (not ECDHE)", name, ErrCipherSuite)
		}
		return 0, fmt.Errorf("cipher suite %q: %w: not AEAD (CBC mode)", name, ErrCipherSuite)
	}
	allowed := make([]string, len(SecureCiphers))
	for i, id := range SecureCiphers {
		allowed[i] = tls.CipherSuiteName(id)
	}
	return 0, fmt.Errorf("cipher suite %q: %w: unknown (allowed: %s)", name, ErrCipherSuite, strings.Join(allowed, ", "))
}

// checkCipherKey makes sure a TLS 1.2 handshake can use the certificate's
// key with at least one of the configured suites: ECDSA and Ed25519 keys need
// an ECDHE_ECDSA suite, RSA keys an ECDHE_RSA one. Without this a listener
// would start and then fail every TLS 1.2 handshake.
func checkCipherKey(ciphers []uint16, leaf *x509.Certificate) error {
	var prefix string
	switch leaf.PublicKeyAlgorithm {
	case x509.ECDSA, x509.Ed25519:
		prefix = "TLS_ECDHE_ECDSA_"
	case x509.RSA:
		prefix = "TLS_ECDHE_RSA_"
	default:
		return nil
	}
	for _, id := range ciphers {
		if strings.HasPrefix(tls.CipherSuiteName(id), prefix) {
			return nil
		}
	}
	return fmt.Errorf("no configured cipher suite works with the certificate's %s key (need a %s* suite for TLS 1.2)", leaf.PublicKeyAlgorithm, prefix)
}
