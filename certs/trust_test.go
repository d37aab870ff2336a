package certs

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeBundle writes the CA certificates of ps, in order, to path.
func writeBundle(t *testing.T, path string, ps ...*pki) {
	t.Helper()
	var b []byte
	for _, p := range ps {
		b = append(b, p.ca.certPEM...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedFingerprints(ps ...*pki) []string {
	var out []string
	for _, p := range ps {
		out = append(out, Fingerprint(p.ca.cert))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Trust names the leaf and every CA certificate by fingerprint: sorted,
// without duplicates; nil CAs when the zone has no bundle; the lab CA when
// the zone runs on the lab certificate.
func TestTrust(t *testing.T) {
	dir := t.TempDir()
	one, two := newPKI(t, dir, "one"), newPKI(t, dir, "two")
	leaf := one.leaf("localhost")
	certFile, keyFile := one.writeLeaf("sbc", leaf)
	bundle := filepath.Join(dir, "bundle.pem")
	writeBundle(t, bundle, two, one, two)

	z := mustZone(t, Options{Zone: "z", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, CAFile: bundle, VerifyPeer: true})
	got := z.Trust()
	if got.Cert != Fingerprint(leaf.cert) || !slices.Equal(got.CAs, sortedFingerprints(one, two)) {
		t.Errorf("Trust() = %+v, want leaf %s and CAs %v", got, Fingerprint(leaf.cert), sortedFingerprints(one, two))
	}
	sys := mustZone(t, Options{Zone: "z", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, VerifyPeer: true})
	if got := sys.Trust(); got.Cert != Fingerprint(leaf.cert) || got.CAs != nil {
		t.Errorf("without a CA file: Trust() = %+v, want nil CAs (system roots)", got)
	}
	lab, err := EnsureLab(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	lz := mustZone(t, Options{Zone: "z", MinVersion: tls.VersionTLS12, Lab: lab, VerifyPeer: true})
	if got, want := lz.Trust().CAs, pemFingerprints(t, lab.CAFile); !slices.Equal(got, want) {
		t.Errorf("lab zone CAs %v, want the lab CA %v", got, want)
	}
	if (&Zone{}).Trust().Cert != "" {
		t.Error("an uninitialised zone reports a certificate")
	}
}

func pemFingerprints(t *testing.T, path string) []string {
	t.Helper()
	cas, err := loadCAFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cas {
		out = append(out, Fingerprint(c))
	}
	return out
}

// A reload that withdraws a CA takes effect at once on the configs already
// serving, both ways; a reload that adds one is refused (those configs could
// not trust it) and changes nothing; putting the CA back restores it.
func TestReloadWithdrawsCA(t *testing.T) {
	dir := t.TempDir()
	ours, partner, newer := newPKI(t, dir, "ours"), newPKI(t, dir, "partner"), newPKI(t, dir, "newer")
	certFile, keyFile := ours.writeLeaf("sbc", ours.leaf("localhost", "127.0.0.1"))
	bundle := filepath.Join(dir, "bundle.pem")
	writeBundle(t, bundle, ours, partner)
	z := mustZone(t, Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, CAFile: bundle,
		VerifyPeer: true, ClientAuth: "require"})
	serverCfg, clientCfg := z.ServerConfig(), z.ClientConfig() // built once, used across reloads

	peer := tlsCert(t, partner.leaf("localhost", "127.0.0.1"))
	// parapet dials the partner, and the partner dials parapet.
	outbound := func() (srv, cli outcome) {
		return exchange(t, &tls.Config{Certificates: []tls.Certificate{peer}}, clientCfg)
	}
	inbound := func() (srv, cli outcome) {
		return exchange(t, serverCfg, &tls.Config{Certificates: []tls.Certificate{peer}, RootCAs: ours.pool(), ServerName: "localhost"})
	}
	{
		srv, cli := outbound()
		mustSucceed(t, srv, cli)
	}
	{
		srv, cli := inbound()
		mustSucceed(t, srv, cli)
	}

	writeBundle(t, bundle, ours)
	if err := z.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := z.Trust().CAs; !slices.Equal(got, sortedFingerprints(ours)) {
		t.Errorf("after withdrawing the partner CA: CAs %v", got)
	}
	{
		srv, cli := outbound()
		mustFail(t, srv, cli)
	}
	if srv, _ := inbound(); srv.err == nil {
		t.Error("a client certificate from the withdrawn CA was accepted")
	}

	writeBundle(t, bundle, ours, newer)
	err := z.Reload()
	if err == nil || !strings.Contains(err.Error(), "restart") || !strings.Contains(err.Error(), bundle) {
		t.Errorf("adding a CA: Reload error %v, want a refusal naming the file and asking for a restart", err)
	}
	if got := z.Trust().CAs; !slices.Equal(got, sortedFingerprints(ours)) {
		t.Errorf("a refused reload changed the CAs: %v", got)
	}

	writeBundle(t, bundle, partner, ours)
	if err := z.Reload(); err != nil {
		t.Fatal(err)
	}
	{
		srv, cli := outbound()
		mustSucceed(t, srv, cli)
	}
	{
		srv, cli := inbound()
		mustSucceed(t, srv, cli)
	}
}

// Prepare reads without applying; Commit applies.
func TestPrepareCommit(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "p")
	first := p.leaf("localhost")
	certFile, keyFile := p.writeLeaf("sbc", first)
	z := mustZone(t, Options{Zone: "z", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile, VerifyPeer: true})
	second := p.leaf("localhost")
	p.writeLeaf("sbc", second)
	pending, err := z.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if pending.Trust().Cert != Fingerprint(second.cert) || z.Trust().Cert != Fingerprint(first.cert) {
		t.Fatalf("Prepare: pending %s, in force %s", pending.Trust().Cert, z.Trust().Cert)
	}
	pending.Commit()
	if z.Trust().Cert != Fingerprint(second.cert) || Fingerprint(z.Leaf()) != Fingerprint(second.cert) {
		t.Fatal("Commit did not put the new certificate in force")
	}
	if _, err := (&Zone{}).Prepare(); err == nil {
		t.Error("Prepare on an uninitialised zone")
	}
}

// FindLab creates nothing, and finds the lab PKI only when EnsureLab would
// use it as it is.
func TestFindLab(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := FindLab(dir); err == nil {
		t.Fatal("FindLab on a missing directory")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("FindLab created the directory")
	}
	made, err := EnsureLab(dir, "10.1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	found, err := FindLab(dir, "10.1.2.3")
	if err != nil || *found != *made {
		t.Fatalf("FindLab = %+v, %v; want %+v", found, err, made)
	}
	if _, err := FindLab(dir, "sbc.elsewhere.example"); err == nil {
		t.Error("FindLab accepted a leaf that EnsureLab would renew for a new host")
	}
	if _, err := findLab(dir, time.Now().Add(leafValidity), nil); err == nil {
		t.Error("FindLab accepted a leaf that EnsureLab would renew at expiry")
	}
}
