package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// readCert parses the first certificate in a PEM file.
func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// labFingerprints are the fingerprints of a lab's CA, SBC and peer leaves.
func labFingerprints(t *testing.T, p *LabPKI) (ca, sbc, peer string) {
	t.Helper()
	return Fingerprint(readCert(t, p.CAFile)), Fingerprint(readCert(t, p.CertFile)), Fingerprint(readCert(t, p.PeerCertFile))
}

// fileMode is the permission bits of path.
func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureLabCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "lab")
	p, err := EnsureLab(dir, "192.0.2.10", "sbc.lab.example", "[2001:db8::10]")
	if err != nil {
		t.Fatal(err)
	}
	if want := labPaths(dir); *p != *want {
		t.Errorf("paths = %+v, want %+v", p, want)
	}
	if m := fileMode(t, dir); m != 0o700 {
		t.Errorf("dir mode = %o, want 700", m)
	}
	for path, want := range map[string]os.FileMode{
		p.CAFile: 0o644, p.CertFile: 0o644, p.PeerCertFile: 0o644,
		p.CAKeyFile: 0o600, p.KeyFile: 0o600, p.PeerKeyFile: 0o600, p.PeerBundleFile: 0o600,
	} {
		if m := fileMode(t, path); m != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(path), m, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 {
		t.Errorf("lab dir holds %d entries, want 7 (no temporary files left)", len(entries))
	}

	ca := readCert(t, p.CAFile)
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Error("lab CA is not a CA")
	}
	if life := time.Until(ca.NotAfter); life < 9*365*24*time.Hour || life > 11*365*24*time.Hour {
		t.Errorf("CA valid for %v, want about 10 years", life)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, f := range []struct{ cert, key string }{{p.CertFile, p.KeyFile}, {p.PeerCertFile, p.PeerKeyFile}} {
		leaf := readCert(t, f.cert)
		if life := time.Until(leaf.NotAfter); life < 364*24*time.Hour || life > 366*24*time.Hour {
			t.Errorf("%s valid for %v, want 1 year", filepath.Base(f.cert), life)
		}
		pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key is not ECDSA P-256", filepath.Base(f.cert))
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			for _, host := range []string{"localhost", "127.0.0.1", "::1", "192.0.2.10", "sbc.lab.example", "2001:db8::10"} {
				if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("%s for %s (usage %v): %v", filepath.Base(f.cert), host, usage, err)
				}
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.example"}); err == nil {
			t.Errorf("%s verifies for a name it was not issued for", filepath.Base(f.cert))
		}
		if _, err := tls.LoadX509KeyPair(f.cert, f.key); err != nil {
			t.Errorf("%s does not match its key: %v", filepath.Base(f.cert), err)
		}
	}

	// The bundle is the peer certificate followed by its key, usable on its own.
	bundle, err := os.ReadFile(p.PeerBundleFile)
	if err != nil {
		t.Fatal(err)
	}
	peerCert, _ := os.ReadFile(p.PeerCertFile)
	peerKey, _ := os.ReadFile(p.PeerKeyFile)
	if !bytes.Equal(bundle, append(peerCert, peerKey...)) {
		t.Error("peer bundle is not cert followed by key")
	}
	if _, err := tls.X509KeyPair(bundle, bundle); err != nil {
		t.Errorf("peer bundle is not a usable key pair: %v", err)
	}
}

func TestEnsureLabReuses(t *testing.T) {
	dir := t.TempDir()
	p1, err := EnsureLab(dir, "sbc.lab.example")
	if err != nil {
		t.Fatal(err)
	}
	ca1, sbc1, peer1 := labFingerprints(t, p1)
	// Someone loosened a key's mode: reuse tightens it again.
	if err := os.Chmod(p1.KeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := EnsureLab(dir, "SBC.lab.example.") // same host, other spelling
	if err != nil {
		t.Fatal(err)
	}
	ca2, sbc2, peer2 := labFingerprints(t, p2)
	if ca1 != ca2 || sbc1 != sbc2 || peer1 != peer2 {
		t.Error("second EnsureLab regenerated a usable lab")
	}
	if m := fileMode(t, p2.KeyFile); m != 0o600 {
		t.Errorf("key mode after reuse = %o", m)
	}

	// A new extra host needs new leaves, not a new CA.
	p3, err := EnsureLab(dir, "sbc.lab.example", "192.0.2.20")
	if err != nil {
		t.Fatal(err)
	}
	ca3, sbc3, peer3 := labFingerprints(t, p3)
	if ca3 != ca1 || sbc3 == sbc1 || peer3 == peer1 {
		t.Error("a new host should renew the leaves and keep the CA")
	}
	if err := readCert(t, p3.CertFile).VerifyHostname("192.0.2.20"); err != nil {
		t.Error(err)
	}
}

func TestEnsureLabRenews(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name    string
		spoil   func(t *testing.T, p *LabPKI, ca *issued)
		sameCA  bool
		renewed func(p *LabPKI) []string // files whose certificate must change
	}{
		{
			name: "expired leaf",
			spoil: func(t *testing.T, p *LabPKI, ca *issued) {
				writeIssued(t, ca, p.CertFile, p.KeyFile, now.Add(-400*24*time.Hour), now.Add(-time.Hour))
			},
			sameCA:  true,
			renewed: func(p *LabPKI) []string { return []string{p.CertFile} },
		},
		{
			name: "leaf expiring in 3 days",
			spoil: func(t *testing.T, p *LabPKI, ca *issued) {
				writeIssued(t, ca, p.PeerCertFile, p.PeerKeyFile, now.Add(-time.Hour), now.Add(3*24*time.Hour))
			},
			sameCA:  true,
			renewed: func(p *LabPKI) []string { return []string{p.PeerCertFile} },
		},
		{
			name: "leaf from another CA",
			spoil: func(t *testing.T, p *LabPKI, _ *issued) {
				other, err := newCA("other", now.Add(-time.Hour), now.Add(48*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				writeIssued(t, other, p.CertFile, p.KeyFile, now.Add(-time.Hour), now.Add(300*24*time.Hour))
			},
			sameCA:  true,
			renewed: func(p *LabPKI) []string { return []string{p.CertFile} },
		},
		{
			name: "leaf key replaced",
			spoil: func(t *testing.T, p *LabPKI, ca *issued) {
				l, err := newLeaf(ca, "x", labHosts, now.Add(-time.Hour), now.Add(300*24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p.KeyFile, l.keyPEM, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			sameCA:  true,
			renewed: func(p *LabPKI) []string { return []string{p.CertFile} },
		},
		{
			name: "CA expiring in 6 days",
			spoil: func(t *testing.T, p *LabPKI, _ *issued) {
				ca, err := newCA("short", now.Add(-time.Hour), now.Add(6*24*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				if err := ca.write(p.CAFile, p.CAKeyFile); err != nil {
					t.Fatal(err)
				}
			},
			renewed: func(p *LabPKI) []string { return []string{p.CertFile, p.PeerCertFile} },
		},
		{
			name: "CA missing",
			spoil: func(t *testing.T, p *LabPKI, _ *issued) {
				if err := os.Remove(p.CAFile); err != nil {
					t.Fatal(err)
				}
			},
			renewed: func(p *LabPKI) []string { return []string{p.CertFile, p.PeerCertFile} },
		},
		{
			name: "leaf file garbage",
			spoil: func(t *testing.T, p *LabPKI, _ *issued) {
				if err := os.WriteFile(p.PeerCertFile, []byte("garbage"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			sameCA:  true,
			renewed: func(p *LabPKI) []string { return []string{p.PeerCertFile} },
		},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p, err := EnsureLab(dir)
			if err != nil {
				t.Fatal(err)
			}
			ca, err := reuseCA(p.CAFile, p.CAKeyFile, now)
			if err != nil || ca == nil {
				t.Fatalf("reuseCA: %v, %v", ca, err)
			}
			before := map[string]string{}
			for _, f := range []string{p.CAFile, p.CertFile, p.PeerCertFile} {
				before[f] = Fingerprint(readCert(t, f))
			}
			tt.spoil(t, p, ca)
			if _, err := EnsureLab(dir); err != nil {
				t.Fatal(err)
			}
			renewed := tt.renewed(p)
			for _, f := range []string{p.CertFile, p.PeerCertFile} {
				changed := Fingerprint(readCert(t, f)) != before[f]
				if want := slices.Contains(renewed, f); changed != want {
					t.Errorf("%s renewed = %v, want %v", filepath.Base(f), changed, want)
				}
			}
			if same := Fingerprint(readCert(t, p.CAFile)) == before[p.CAFile]; same != tt.sameCA {
				t.Errorf("CA kept = %v, want %v", same, tt.sameCA)
			}
			// Whatever happened, the result is a usable lab again.
			ok, err := leafUsable(p.CertFile, p.KeyFile, readCert(t, p.CAFile), labHosts, time.Now())
			if err != nil || !ok {
				t.Errorf("SBC leaf not usable after EnsureLab: %v", err)
			}
			ok, err = leafUsable(p.PeerCertFile, p.PeerKeyFile, readCert(t, p.CAFile), labHosts, time.Now())
			if err != nil || !ok {
				t.Errorf("peer leaf not usable after EnsureLab: %v", err)
			}
			bundle, _ := os.ReadFile(p.PeerBundleFile)
			if b, err := tls.X509KeyPair(bundle, bundle); err != nil || Fingerprint(b.Leaf) != Fingerprint(readCert(t, p.PeerCertFile)) {
				t.Errorf("peer bundle does not follow the peer leaf: %v", err)
			}
		})
	}
}

// writeIssued writes a lab-style leaf signed by ca with the given validity.
func writeIssued(t *testing.T, ca *issued, certFile, keyFile string, notBefore, notAfter time.Time) {
	t.Helper()
	l, err := newLeaf(ca, "spoiled", labHosts, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.write(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
}

func TestEnsureLabErrors(t *testing.T) {
	if _, err := EnsureLab(""); err == nil {
		t.Error("EnsureLab accepted an empty directory")
	}
	for _, host := range []string{"a b", "../etc", "x_y.example", "host:5061", ""} {
		_, err := EnsureLab(t.TempDir(), host)
		if err == nil || !strings.Contains(err.Error(), "lab pki: host") {
			t.Errorf("extra host %q: err = %v", host, err)
		}
	}
}

// The lab PKI feeds a zone end to end: the SBC's listener with the lab
// certificate, a peer presenting the lab peer certificate, and both sides
// verifying against the lab CA.
func TestLabZoneHandshake(t *testing.T) {
	lab, err := EnsureLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sbc := mustZone(t, Options{Zone: "clinic", MinVersion: tls.VersionTLS12, Lab: lab, VerifyPeer: true, ClientAuth: "require"})
	peer := mustZone(t, Options{Zone: "phone", MinVersion: tls.VersionTLS12, CertFile: lab.PeerBundleFile, KeyFile: lab.PeerBundleFile, CAFile: lab.CAFile, VerifyPeer: true})
	if sbc.CAPool() == nil {
		t.Fatal("a lab zone without a CA file should use the lab CA")
	}
	srv, cli := exchange(t, sbc.ServerConfig(), peer.ClientConfig())
	mustSucceed(t, srv, cli)
	if peerFingerprint(srv) != Fingerprint(peer.Leaf()) || peerFingerprint(cli) != Fingerprint(sbc.Leaf()) {
		t.Error("the sides did not see each other's lab certificates")
	}
}

func TestWriteSelfSigned(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	paths, err := WriteSelfSigned("sbc.clinic.example", dir, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ca.pem", "ca.key", "sbc.clinic.example.pem", "sbc.clinic.example.key"}
	for i, p := range paths {
		if filepath.Base(p) != want[i] || filepath.Dir(p) != dir {
			t.Errorf("path %d = %s, want %s in %s", i, p, want[i], dir)
		}
	}
	if len(paths) != len(want) {
		t.Fatalf("paths = %v", paths)
	}
	for i, mode := range []os.FileMode{0o644, 0o600, 0o644, 0o600} {
		if m := fileMode(t, paths[i]); m != mode {
			t.Errorf("%s: mode %o, want %o", filepath.Base(paths[i]), m, mode)
		}
	}
	ca := readCert(t, paths[0])
	leaf := readCert(t, paths[2])
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "sbc.clinic.example", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Error(err)
	}
	if got := SANs(leaf); !slices.Equal(got, []string{"sbc.clinic.example"}) {
		t.Errorf("SANs = %v", got)
	}
	if _, err := tls.LoadX509KeyPair(paths[2], paths[3]); err != nil {
		t.Error(err)
	}

	// No overwrite without force, and nothing written.
	before := Fingerprint(leaf)
	if _, err := WriteSelfSigned("sbc.clinic.example", dir, false); err == nil || !strings.Contains(err.Error(), "force") {
		t.Errorf("second write without force: %v", err)
	}
	if _, err := WriteSelfSigned("other.example", dir, false); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Errorf("a new host over an existing CA without force: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other.example.pem")); err == nil {
		t.Error("a refused write left files behind")
	}
	if Fingerprint(readCert(t, paths[2])) != before {
		t.Error("a refused write changed the leaf")
	}
	if _, err := WriteSelfSigned("sbc.clinic.example", dir, true); err != nil {
		t.Fatal(err)
	}
	if Fingerprint(readCert(t, paths[2])) == before {
		t.Error("force did not overwrite")
	}

	// IP hosts get IP SANs and colon-free file names.
	paths, err = WriteSelfSigned("2001:db8::5", t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(paths[2]) != "2001_db8__5.pem" {
		t.Errorf("IPv6 file name = %s", filepath.Base(paths[2]))
	}
	if err := readCert(t, paths[2]).VerifyHostname("2001:db8::5"); err != nil {
		t.Error(err)
	}

	for _, host := range []string{"", "../../etc/passwd", "a/b", "ca", "bad host"} {
		if _, err := WriteSelfSigned(host, t.TempDir(), true); err == nil {
			t.Errorf("host %q accepted", host)
		}
	}
}
