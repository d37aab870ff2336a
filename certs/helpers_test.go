package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// pki is a test certificate authority with its files on disk.
type pki struct {
	t      *testing.T
	dir    string
	ca     *issued
	caFile string
}

// newPKI creates a CA named name and writes its certificate to dir.
func newPKI(t *testing.T, dir, name string) *pki {
	t.Helper()
	now := time.Now()
	ca, err := newCA(name, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{t: t, dir: dir, ca: ca, caFile: filepath.Join(dir, name+"-ca.pem")}
	if err := os.WriteFile(p.caFile, ca.certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// leaf issues a leaf for hosts valid for a day.
func (p *pki) leaf(hosts ...string) *issued {
	p.t.Helper()
	now := time.Now()
	l, err := newLeaf(p.ca, "test leaf", hosts, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		p.t.Fatal(err)
	}
	return l
}

// pool is a CertPool holding only this CA.
func (p *pki) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.cert)
	return pool
}

// writeLeaf writes l as name.pem/name.key in the PKI's directory.
func (p *pki) writeLeaf(name string, l *issued) (certFile, keyFile string) {
	p.t.Helper()
	certFile = filepath.Join(p.dir, name+".pem")
	keyFile = filepath.Join(p.dir, name+".key")
	if err := os.WriteFile(certFile, l.certPEM, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, l.keyPEM, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

// tlsCert turns an issued leaf into a tls.Certificate for test clients.
func tlsCert(t *testing.T, l *issued) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(l.certPEM, l.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mustZone builds a zone or fails the test.
func mustZone(t *testing.T, opts Options) *Zone {
	t.Helper()
	z, err := NewZone(opts)
	if err != nil {
		t.Fatalf("NewZone: %v", err)
	}
	return z
}

// outcome is one side of a TLS exchange.
type outcome struct {
	state tls.ConnectionState
	err   error
}

// exchange runs one TLS connection over loopback TCP: the server handshakes
// and writes "ok", the client dials 127.0.0.1 (so an empty ServerName becomes
// "127.0.0.1"), and reads it. Reading matters: with TLS 1.3 the client
// finishes its handshake before the server has checked the client
// certificate, and learns of a refusal only on its first read.
func exchange(t *testing.T, server, client *tls.Config) (srv, cli outcome) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()

	done := make(chan outcome, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- outcome{err: err}
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(deadline)
		conn := tls.Server(raw, server)
		if err := conn.HandshakeContext(ctx); err != nil {
			done <- outcome{err: err}
			return
		}
		state := conn.ConnectionState()
		_, err = conn.Write([]byte("ok"))
		_, _ = io.Copy(io.Discard, conn) // until the client closes
		done <- outcome{state: state, err: err}
	}()

	d := tls.Dialer{Config: client}
	conn, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		cli = outcome{err: err}
	} else {
		tc := conn.(*tls.Conn)
		_ = tc.SetDeadline(deadline)
		buf := make([]byte, 2)
		_, err = io.ReadFull(tc, buf)
		if err == nil && string(buf) != "ok" {
			t.Fatalf("client read %q", buf)
		}
		cli = outcome{state: tc.ConnectionState(), err: err}
		_ = tc.Close()
	}
	srv = <-done
	return srv, cli
}

// mustSucceed fails the test unless both sides of an exchange succeeded.
func mustSucceed(t *testing.T, srv, cli outcome) {
	t.Helper()
	if srv.err != nil || cli.err != nil {
		t.Fatalf("handshake failed: server: %v; client: %v", srv.err, cli.err)
	}
}

// mustFail fails the test unless both sides of an exchange failed.
func mustFail(t *testing.T, srv, cli outcome) {
	t.Helper()
	if srv.err == nil || cli.err == nil {
		t.Fatalf("handshake should fail on both sides: server: %v; client: %v", srv.err, cli.err)
	}
}

// peerFingerprint is the fingerprint of the first certificate the other side
// presented, or "".
func peerFingerprint(o outcome) string {
	if len(o.state.PeerCertificates) == 0 {
		return ""
	}
	return Fingerprint(o.state.PeerCertificates[0])
}
