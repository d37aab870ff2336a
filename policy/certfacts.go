package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
)

// CertFactsOf describes a certificate as records name it: subject, issuer,
// SANs (DNS names, IP addresses, URIs), the hex SHA-256 of its DER and its
// expiry. Whether it verified is for the caller to say. b2bua (the peers
// parapet talks to) and audit (certificates read from captures) both use
// it, so a certificate reads the same in both.
func CertFactsOf(c *x509.Certificate) CertFacts {
	sum := sha256.Sum256(c.Raw)
	f := CertFacts{
		Subject:  c.Subject.String(),
		Issuer:   c.Issuer.String(),
		SHA256:   hex.EncodeToString(sum[:]),
		NotAfter: c.NotAfter.UTC(),
	}
	f.SANs = append(f.SANs, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		f.SANs = append(f.SANs, ip.String())
	}
	for _, u := range c.URIs {
		f.SANs = append(f.SANs, u.String())
	}
	return f
}
