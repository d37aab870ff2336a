package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validity of generated certificates.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// backdate covers small clock differences between parapet and its peers.
	backdate = time.Hour
)

// File modes of generated files.
const (
	modeCert os.FileMode = 0o644
	modeKey  os.FileMode = 0o600
	modeDir  os.FileMode = 0o700
)

// issued is a generated certificate with its key, parsed and in PEM.
type issued struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

// newCA creates a self-signed ECDSA P-256 CA that may sign leaves only.
func newCA(cn string, notBefore, notAfter time.Time) (*issued, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"parapet lab (not for production)"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return issue(tmpl, nil)
}

// newLeaf creates an ECDSA P-256 leaf signed by ca for hosts, usable as both
// a TLS server and a TLS client certificate.
func newLeaf(ca *issued, cn string, hosts []string, notBefore, notAfter time.Time) (*issued, error) {
	dns, ips, err := splitHosts(hosts)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"parapet lab (not for production)"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dns,
		IPAddresses: ips,
	}
	return issue(tmpl, ca)
}

// issue generates a key and signs tmpl with parent (nil: self-signed).
func issue(tmpl *x509.Certificate, parent *issued) (*issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial: %w", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1)) // never 0
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse generated certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal generated key: %w", err)
	}
	return &issued{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// write stores the key (0600) and then the certificate (0644). A crash in
// between leaves a pair that does not match, which EnsureLab detects.
func (is *issued) write(certFile, keyFile string) error {
	if err := writeFileAtomic(keyFile, is.keyPEM, modeKey); err != nil {
		return err
	}
	return writeFileAtomic(certFile, is.certPEM, modeCert)
}

// randomTag is a short random hex string that tells generated CAs apart.
func randomTag() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate name: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// splitHosts sorts hosts into DNS names and IP addresses, dropping
// duplicates. IPv6 addresses may be bracketed. Anything that is neither an IP
// address nor a plausible DNS name (optionally "*." wildcarded) is an error:
// these names end up in certificates and file names.
func splitHosts(hosts []string) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, h := range hosts {
		name := strings.TrimSpace(h)
		if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")); ip != nil {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				ips = append(ips, ip)
			}
			continue
		}
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if err := checkDNSName(name); err != nil {
			return nil, nil, fmt.Errorf("host %q: %w", h, err)
		}
		if !seen[name] {
			seen[name] = true
			dns = append(dns, name)
		}
	}
	return dns, ips, nil
}

// checkDNSName accepts LDH names with labels of 1 to 63 characters and an
// optional leading "*" label.
func checkDNSName(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if len(name) > 253 {
		return errors.New("host name longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for i, l := range labels {
		if l == "*" && i == 0 && len(labels) > 1 {
			continue
		}
		if l == "" || len(l) > 63 {
			return errors.New("not a DNS name or IP address (empty or over-long label)")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return errors.New("not a DNS name or IP address (label starts or ends with '-')")
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("not a DNS name or IP address (character %q)", r)
			}
		}
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, with mode perm set explicitly (not subject to the umask), then
// renames it into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// mkdirPrivate creates dir with mode 0700 when it does not exist. An
// existing directory is left as it is.
func mkdirPrivate(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, modeDir); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, modeDir); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return nil
}
