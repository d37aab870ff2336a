package certs

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"
)

// Fingerprint is the hex SHA-256 of the DER certificate, lowercase and
// without colons, as written in compliance records. It is "" for nil.
func Fingerprint(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// SANs lists the certificate's subject alternative names: DNS names, then IP
// addresses, then URIs, then email addresses, each in certificate order and
// without a type prefix. It is nil for nil or a certificate without SANs.
func SANs(c *x509.Certificate) []string {
	if c == nil {
		return nil
	}
	var out []string
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.EmailAddresses...)
	return out
}

// expiryWarning is the text of Zone.Expiring: what names the certificate.
func expiryWarning(what string, leaf *x509.Certificate, now time.Time, d time.Duration) string {
	id := describe(leaf)
	switch left := leaf.NotAfter.Sub(now); {
	case now.Before(leaf.NotBefore):
		return fmt.Sprintf("%s (%s) is not valid until %s (check the clock)", what, id, stamp(leaf.NotBefore))
	case left <= 0:
		return fmt.Sprintf("%s (%s) expired %s ago, on %s", what, id, humanDuration(-left), stamp(leaf.NotAfter))
	case left <= d:
		return fmt.Sprintf("%s (%s) expires in %s, on %s", what, id, humanDuration(left), stamp(leaf.NotAfter))
	}
	return ""
}

// describe names a certificate for humans: subject CN (or first SAN) and a
// short fingerprint.
func describe(c *x509.Certificate) string {
	name := c.Subject.CommonName
	if name == "" {
		if sans := SANs(c); len(sans) > 0 {
			name = sans[0]
		}
	}
	return fmt.Sprintf("%q, sha256 %s…", name, Fingerprint(c)[:16])
}

// stamp formats a certificate time.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// humanDuration renders a duration in whole days, hours or minutes.
func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d/time.Hour))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d/time.Minute))
	}
	return "less than 2 minutes"
}
