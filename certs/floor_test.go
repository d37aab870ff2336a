package certs

import (
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSecureCiphers(t *testing.T) {
	insecure := map[uint16]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.ID] = true
	}
	secure := map[uint16]*tls.CipherSuite{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.ID] = cs
	}
	for _, id := range SecureCiphers {
		name := tls.CipherSuiteName(id)
		cs := secure[id]
		if insecure[id] || cs == nil {
			t.Errorf("%s is not among Go's secure suites", name)
			continue
		}
		if !slices.Contains(cs.SupportedVersions, tls.VersionTLS12) {
			t.Errorf("%s is not a TLS 1.2 suite", name)
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "_CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with AEAD", name)
		}
	}
	// Every ECDHE AEAD TLS 1.2 suite Go offers is in the list.
	for _, cs := range tls.CipherSuites() {
		aead := strings.Contains(cs.Name, "_GCM_") || strings.Contains(cs.Name, "_CHACHA20_POLY1305")
		if strings.HasPrefix(cs.Name, "TLS_ECDHE_") && aead && !slices.Contains(SecureCiphers, cs.ID) {
			t.Errorf("%s is missing from SecureCiphers", cs.Name)
		}
	}
}

func TestParseCiphers(t *testing.T) {
	got, err := ParseCiphers(nil)
	if err != nil || !slices.Equal(got, SecureCiphers) {
		t.Fatalf("ParseCiphers(nil) = %v, %v", got, err)
	}
	got[0] = 0
	if SecureCiphers[0] == 0 {
		t.Fatal("ParseCiphers(nil) returned SecureCiphers itself")
	}

	got, err = ParseCiphers([]string{
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	})
	want := []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseCiphers = %v, %v; want %v", got, err, want)
	}

	refused := []struct{ name, reason string }{
		{"TLS_RSA_WITH_RC4_128_SHA", "insecure"},
		{"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "insecure"},
		{"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "insecure"},
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "insecure"},
		{"TLS_RSA_WITH_AES_256_GCM_SHA384", "insecure"}, // no forward secrecy: in Go's insecure list
		{"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "CBC"},
		{"TLS_CHACHA20_POLY1305_SHA256", "TLS 1.3"},
		{"TLS_ECDHE_ECDSA_WITH_NULL_SHA", "unknown"},
		{"", "unknown"},
	}
	for _, r := range refused {
		_, err := ParseCiphers([]string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", r.name})
		if !errors.Is(err, ErrCipherSuite) {
			t.Errorf("%q: err = %v, want ErrCipherSuite", r.name, err)
			continue
		}
		if !strings.Contains(err.Error(), r.reason) || !strings.Contains(err.Error(), `"`+r.name+`"`) {
			t.Errorf("%q: error %q should name the suite and say %q", r.name, err, r.reason)
		}
	}
}

func TestApplyFloor(t *testing.T) {
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := &tls.Config{}
		if err := applyFloor(cfg, v); err != nil || cfg.MinVersion != v {
			t.Errorf("applyFloor(%s) = %v, MinVersion %#x", tls.VersionName(v), err, cfg.MinVersion)
		}
	}
	for _, v := range []uint16{0, tls.VersionTLS10, tls.VersionTLS11, 0x0305, 0xffff} {
		cfg := &tls.Config{MinVersion: tls.VersionTLS13}
		if err := applyFloor(cfg, v); !errors.Is(err, ErrMinVersion) {
			t.Errorf("applyFloor(%#x) = %v, want ErrMinVersion", v, err)
		}
		if cfg.MinVersion != tls.VersionTLS13 {
			t.Errorf("applyFloor(%#x) changed the config on error", v)
		}
	}
}
