package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// renewBefore is how long before expiry EnsureLab replaces a certificate.
const renewBefore = 7 * 24 * time.Hour

// labHosts are the names every lab leaf carries.
var labHosts = []string{"localhost", "127.0.0.1", "::1"}

// labMu serialises EnsureLab within the process, so that two callers on the
// same directory cannot interleave a certificate with another's key.
var labMu sync.Mutex

// LabPKI is the lab certificate authority and leaves generated once into a
// state directory (see EnsureLab). Each path is Dir joined with its file name:
//
//	lab-ca.pem, lab-ca.key    the lab CA (kept across leaf renewals)
//	parapet.pem, parapet.key  the SBC's own leaf
//	peer.pem, peer.key        a peer: the lab carrier, a test phone
//	peer-bundle.pem           peer certificate followed by its key, the form
//	                          baresip's sip_certificate wants (mode 0600)
//
// Lab certificates are for loopback labs and tests, never for production.
type LabPKI struct {
	// Dir is the state directory holding the files.
	Dir string
	// CAFile and CAKeyFile are the lab CA certificate and key.
	CAFile, CAKeyFile string
	// CertFile and KeyFile are the SBC's leaf certificate and key.
	CertFile, KeyFile string
	// PeerCertFile and PeerKeyFile are the peer's leaf certificate and key.
	PeerCertFile, PeerKeyFile string
	// PeerBundleFile is the peer certificate followed by its key.
	PeerBundleFile string
}

// labPaths names the files of a lab PKI in dir.
func labPaths(dir string) *LabPKI {
	return &LabPKI{
		Dir:            dir,
		CAFile:         filepath.Join(dir, "lab-ca.pem"),
		CAKeyFile:      filepath.Join(dir, "lab-ca.key"),
		CertFile:       filepath.Join(dir, "parapet.pem"),
		KeyFile:        filepath.Join(dir, "parapet.key"),
		PeerCertFile:   filepath.Join(dir, "peer.pem"),
		PeerKeyFile:    filepath.Join(dir, "peer.key"),
		PeerBundleFile: filepath.Join(dir, "peer-bundle.pem"),
	}
}

// EnsureLab makes sure dir holds a usable lab PKI and returns its paths.
//
// It creates dir (mode 0700) if needed. The CA is kept when it parses,
// matches its key and is valid for more than 7 days; otherwise it is
// replaced, and with it both leaves. Each leaf is kept when it matches its
// key, chains to the CA on disk, is valid for more than 7 days, carries
// serverAuth and clientAuth, and covers localhost, 127.0.0.1, ::1 and every
// extra host (IP addresses or DNS names); otherwise it is replaced. Keys are
// ECDSA P-256; the CA is valid 10 years, leaves 1 year. Keys (and the peer
// bundle, which holds a key) are written 0600, certificates 0644, each
// through a temporary file and a rename.
//
// EnsureLab is serialised within the process; separate processes sharing a
// directory should not call it at the same moment.
func EnsureLab(dir string, extraHosts ...string) (*LabPKI, error) {
	return ensureLab(dir, time.Now(), extraHosts)
}

// ensureLab is EnsureLab at a given time.
func ensureLab(dir string, now time.Time, extraHosts []string) (*LabPKI, error) {
	if dir == "" {
		return nil, errors.New("lab pki: no directory")
	}
	hosts := append(slices.Clone(labHosts), extraHosts...)
	if _, _, err := splitHosts(hosts); err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	labMu.Lock()
	defer labMu.Unlock()
	if err := mkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	p := labPaths(dir)

	ca, err := reuseCA(p.CAFile, p.CAKeyFile, now)
	if err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	if ca == nil {
		tag, err := randomTag()
		if err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
		ca, err = newCA("parapet lab CA "+tag, now.Add(-backdate), now.Add(caValidity))
		if err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
		if err := ca.write(p.CAFile, p.CAKeyFile); err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
	}
	leaves := []struct{ cn, certFile, keyFile string }{
		{"parapet lab sbc", p.CertFile, p.KeyFile},
		{"parapet lab peer", p.PeerCertFile, p.PeerKeyFile},
	}
	for _, l := range leaves {
		ok, err := leafUsable(l.certFile, l.keyFile, ca.cert, hosts, now)
		if err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
		if ok {
			continue
		}
		leaf, err := newLeaf(ca, l.cn, hosts, now.Add(-backdate), now.Add(leafValidity))
		if err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
		if err := leaf.write(l.certFile, l.keyFile); err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
	}
	if err := ensureBundle(p); err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	// Reused files keep the modes they must have, whatever happened to them.
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{p.CAFile, modeCert}, {p.CertFile, modeCert}, {p.PeerCertFile, modeCert},
		{p.CAKeyFile, modeKey}, {p.KeyFile, modeKey}, {p.PeerKeyFile, modeKey}, {p.PeerBundleFile, modeKey},
	} {
		if err := os.Chmod(f.path, f.mode); err != nil {
			return nil, fmt.Errorf("lab pki: %w", err)
		}
	}
	return p, nil
}

// FindLab returns the lab PKI in dir when EnsureLab, called now with the
// same extra hosts, would keep its CA and the SBC's leaf as they are on disk;
// otherwise an error saying that it does not exist yet or would be renewed.
// It reads only, and creates nothing: `parapet check` uses it to know the
// certificates `parapet run` will use.
func FindLab(dir string, extraHosts ...string) (*LabPKI, error) {
	return findLab(dir, time.Now(), extraHosts)
}

func findLab(dir string, now time.Time, extraHosts []string) (*LabPKI, error) {
	if dir == "" {
		return nil, errors.New("lab pki: no directory")
	}
	hosts := append(slices.Clone(labHosts), extraHosts...)
	if _, _, err := splitHosts(hosts); err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	p := labPaths(dir)
	ca, err := reuseCA(p.CAFile, p.CAKeyFile, now)
	if err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	if ca == nil {
		return nil, fmt.Errorf("lab pki: no usable lab CA in %s (parapet run creates one)", dir)
	}
	ok, err := leafUsable(p.CertFile, p.KeyFile, ca.cert, hosts, now)
	if err != nil {
		return nil, fmt.Errorf("lab pki: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("lab pki: no usable lab certificate in %s (parapet run creates one)", dir)
	}
	return p, nil
}

// readOptional reads a file; a missing file is (nil, nil).
func readOptional(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// reuseCA loads the CA from disk when it is fit for reuse; (nil, nil) means
// it must be generated. Only I/O errors other than a missing file are errors.
func reuseCA(certFile, keyFile string, now time.Time) (*issued, error) {
	certPEM, err := readOptional(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readOptional(keyFile)
	if err != nil {
		return nil, err
	}
	if certPEM == nil || keyPEM == nil {
		return nil, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || !cert.IsCA || !freshAt(cert, now) {
		return nil, nil
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, nil
	}
	return &issued{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// leafUsable reports whether a leaf on disk can be kept: see EnsureLab.
func leafUsable(certFile, keyFile string, ca *x509.Certificate, hosts []string, now time.Time) (bool, error) {
	certPEM, err := readOptional(certFile)
	if err != nil {
		return false, err
	}
	keyPEM, err := readOptional(keyFile)
	if err != nil {
		return false, err
	}
	if certPEM == nil || keyPEM == nil {
		return false, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, nil
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || !freshAt(leaf, now) {
		return false, nil
	}
	if key, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || key.Curve != elliptic.P256() {
		return false, nil
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}
		if _, err := leaf.Verify(opts); err != nil {
			return false, nil
		}
	}
	dns, ips, err := splitHosts(hosts)
	if err != nil {
		return false, err
	}
	for _, name := range dns {
		if !slices.Contains(leaf.DNSNames, name) {
			return false, nil
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false, nil
		}
	}
	return true, nil
}

// freshAt reports whether c is valid at now and for more than renewBefore.
func freshAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && c.NotAfter.Sub(now) > renewBefore
}

// ensureBundle (re)writes the peer bundle when it is not exactly the peer
// certificate followed by the peer key.
func ensureBundle(p *LabPKI) error {
	certPEM, err := os.ReadFile(p.PeerCertFile)
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.PeerKeyFile)
	if err != nil {
		return err
	}
	want := append(append([]byte{}, certPEM...), keyPEM...)
	have, err := readOptional(p.PeerBundleFile)
	if err != nil {
		return err
	}
	if bytes.Equal(have, want) {
		return nil
	}
	return writeFileAtomic(p.PeerBundleFile, want, modeKey)
}

// WriteSelfSigned writes a new CA and one leaf for host into dir, for
// `parapet certs selfsigned -host NAME -o DIR`: ca.pem, ca.key, HOST.pem and
// HOST.key, and returns their paths in that order. host is a DNS name
// (optionally "*."-wildcarded) or an IP address; in the file names ':' and
// '*' become '_'. The leaf carries host as its only SAN and both serverAuth
// and clientAuth. dir is created 0700 if missing. Existing files are not
// overwritten unless force is set; without it, nothing is written when any
// of the four exists.
func WriteSelfSigned(host, dir string, force bool) ([]string, error) {
	return writeSelfSigned(host, dir, force, time.Now())
}

// writeSelfSigned is WriteSelfSigned at a given time.
func writeSelfSigned(host, dir string, force bool, now time.Time) ([]string, error) {
	dns, ips, err := splitHosts([]string{host})
	if err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	var name string
	if len(dns) == 1 {
		name = dns[0]
	} else {
		name = ips[0].String()
	}
	stem := strings.NewReplacer(":", "_", "*", "_").Replace(name)
	if stem == "ca" {
		return nil, fmt.Errorf("selfsigned: host %q would overwrite the CA files", host)
	}
	if dir == "" {
		dir = "."
	}
	paths := []string{
		filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key"),
		filepath.Join(dir, stem+".pem"), filepath.Join(dir, stem+".key"),
	}
	if !force {
		var exist []string
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("selfsigned: %s already exist(s); use force to overwrite", strings.Join(exist, ", "))
		}
	}
	if err := mkdirPrivate(dir); err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	tag, err := randomTag()
	if err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	ca, err := newCA("parapet self-signed CA "+tag, now.Add(-backdate), now.Add(caValidity))
	if err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	leaf, err := newLeaf(ca, name, []string{name}, now.Add(-backdate), now.Add(leafValidity))
	if err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	if err := ca.write(paths[0], paths[1]); err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	if err := leaf.write(paths[2], paths[3]); err != nil {
		return nil, fmt.Errorf("selfsigned: %w", err)
	}
	return paths, nil
}
