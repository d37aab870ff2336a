package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestFingerprint(t *testing.T) {
	p := newPKI(t, t.TempDir(), "f")
	c := p.leaf("localhost").cert
	got := Fingerprint(c)
	if want := fmt.Sprintf("%x", sha256.Sum256(c.Raw)); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(got) {
		t.Errorf("Fingerprint %q is not 64 lowercase hex digits", got)
	}
	if Fingerprint(p.ca.cert) == got {
		t.Error("two certificates share a fingerprint")
	}
	if Fingerprint(nil) != "" {
		t.Error("Fingerprint(nil) is not empty")
	}
}

func TestSANs(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	uri, _ := url.Parse("sip:sbc@clinic.example")
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(7),
		Subject:        pkix.Name{CommonName: "sans"},
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       time.Now().Add(time.Hour),
		DNSNames:       []string{"sbc.clinic.example", "*.trunk.example"},
		IPAddresses:    []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")},
		URIs:           []*url.URL{uri},
		EmailAddresses: []string{"noc@clinic.example"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"sbc.clinic.example", "*.trunk.example", "192.0.2.7", "2001:db8::7", "sip:sbc@clinic.example", "noc@clinic.example"}
	if got := SANs(c); !slices.Equal(got, want) {
		t.Errorf("SANs = %q, want %q", got, want)
	}
	if SANs(nil) != nil {
		t.Error("SANs(nil) is not nil")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		30 * time.Second:          "less than 2 minutes",
		5 * time.Minute:           "5 minutes",
		3*time.Hour + time.Minute: "3 hours",
		47 * time.Hour:            "47 hours",
		50 * time.Hour:            "2 days",
		400 * 24 * time.Hour:      "400 days",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
