package certs

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// loopbackZone is a server zone with a leaf for localhost/127.0.0.1/::1 from
// its own CA, plus that CA.
func loopbackZone(t *testing.T, minVersion uint16) (*Zone, *pki) {
	t.Helper()
	p := newPKI(t, t.TempDir(), "zone")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost", "127.0.0.1", "::1"))
	z := mustZone(t, Options{Zone: "carrier", MinVersion: minVersion, CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile, VerifyPeer: true})
	return z, p
}

func TestFloorHandshakes(t *testing.T) {
	tests := []struct {
		name       string
		zoneMin    uint16
		clientMin  uint16
		clientMax  uint16
		wantOK     bool
		negotiated uint16
	}{
		{"floor 1.2, TLS 1.0 client", tls.VersionTLS12, tls.VersionTLS10, tls.VersionTLS10, false, 0},
		{"floor 1.2, TLS 1.1 client", tls.VersionTLS12, tls.VersionTLS10, tls.VersionTLS11, false, 0},
		{"floor 1.2, TLS 1.2 client", tls.VersionTLS12, tls.VersionTLS12, tls.VersionTLS12, true, tls.VersionTLS12},
		{"floor 1.2, TLS 1.3 client", tls.VersionTLS12, tls.VersionTLS13, tls.VersionTLS13, true, tls.VersionTLS13},
		{"floor 1.2, 1.0-1.3 client gets 1.3", tls.VersionTLS12, tls.VersionTLS10, tls.VersionTLS13, true, tls.VersionTLS13},
		{"floor 1.3, TLS 1.1 client", tls.VersionTLS13, tls.VersionTLS10, tls.VersionTLS11, false, 0},
		{"floor 1.3, TLS 1.2 client", tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS12, false, 0},
		{"floor 1.3, TLS 1.3 client", tls.VersionTLS13, tls.VersionTLS12, tls.VersionTLS13, true, tls.VersionTLS13},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			z, p := loopbackZone(t, tt.zoneMin)
			client := &tls.Config{RootCAs: p.pool(), MinVersion: tt.clientMin, MaxVersion: tt.clientMax}
			srv, cli := exchange(t, z.ServerConfig(), client)
			if !tt.wantOK {
				mustFail(t, srv, cli)
				if !strings.Contains(srv.err.Error(), "client offered only unsupported versions") {
					t.Errorf("server error = %v, want a version refusal", srv.err)
				}
				var op *net.OpError
				if !errors.As(cli.err, &op) || op.Op != "remote error" || !strings.Contains(cli.err.Error(), "protocol version not supported") {
					t.Errorf("client error = %v, want the server's protocol_version alert", cli.err)
				}
				return
			}
			mustSucceed(t, srv, cli)
			for side, o := range map[string]outcome{"server": srv, "client": cli} {
				if o.state.Version != tt.negotiated {
					t.Errorf("%s negotiated %s, want %s", side, tls.VersionName(o.state.Version), tls.VersionName(tt.negotiated))
				}
			}
			if cli.state.Version == tls.VersionTLS12 && !slices.Contains(SecureCiphers, cli.state.CipherSuite) {
				t.Errorf("TLS 1.2 cipher %s is not in SecureCiphers", tls.CipherSuiteName(cli.state.CipherSuite))
			}
		})
	}
}

// A TLS 1.2 client that offers only CBC suites finds nothing to agree on.
func TestServerRefusesNonAEADClient(t *testing.T) {
	z, p := loopbackZone(t, tls.VersionTLS12)
	client := &tls.Config{
		RootCAs:      p.pool(),
		MaxVersion:   tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA},
	}
	srv, cli := exchange(t, z.ServerConfig(), client)
	mustFail(t, srv, cli)
	if !strings.Contains(srv.err.Error(), "no cipher suite supported by both") {
		t.Errorf("server error = %v", srv.err)
	}
}

// b2bua records refused handshakes with the highest version the client
// offered. The pattern: chain a GetConfigForClient that observes the hello
// and returns nil, which keeps the zone's config in force.
func TestRefusedHelloIsObservable(t *testing.T) {
	z, p := loopbackZone(t, tls.VersionTLS12)
	cfg := z.ServerConfig()
	if cfg.GetConfigForClient != nil {
		t.Fatal("ServerConfig sets GetConfigForClient; the observer pattern below would replace it")
	}
	seen := make(chan *tls.ClientHelloInfo, 1)
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		seen <- h
		return nil, nil
	}
	client := &tls.Config{RootCAs: p.pool(), MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, ServerName: "localhost"}
	srv, cli := exchange(t, cfg, client)
	mustFail(t, srv, cli)
	h := <-seen
	if got := slices.Max(h.SupportedVersions); got != tls.VersionTLS11 {
		t.Errorf("highest offered version = %s, want TLS 1.1", tls.VersionName(got))
	}
	if h.ServerName != "localhost" {
		t.Errorf("SNI = %q", h.ServerName)
	}
}

func TestNewZoneRefusesLowVersions(t *testing.T) {
	p := newPKI(t, t.TempDir(), "v")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost"))
	for _, v := range []uint16{0, tls.VersionSSL30, tls.VersionTLS10, tls.VersionTLS11, 0x0305} { //nolint:staticcheck // SA1019: SSL 3.0 on purpose, it must be refused
		_, err := NewZone(Options{Zone: "carrier", MinVersion: v, CertFile: certFile, KeyFile: keyFile})
		if !errors.Is(err, ErrMinVersion) {
			t.Errorf("MinVersion %#04x: err = %v, want ErrMinVersion", v, err)
			continue
		}
		if !strings.Contains(err.Error(), `zone "carrier"`) || !strings.Contains(err.Error(), versionName(v)) {
			t.Errorf("MinVersion %#04x: error %q should name the zone and the version", v, err)
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		if _, err := NewZone(Options{Zone: "carrier", MinVersion: v, CertFile: certFile, KeyFile: keyFile}); err != nil {
			t.Errorf("MinVersion %s: %v", tls.VersionName(v), err)
		}
	}
}

func TestNewZoneRefusesInsecureCiphers(t *testing.T) {
	p := newPKI(t, t.TempDir(), "c")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost"))
	for _, name := range []string{
		"TLS_RSA_WITH_RC4_128_SHA",
		"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
		"TLS_RSA_WITH_AES_128_GCM_SHA256",          // static RSA key exchange
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",  // insecure CBC
		"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",     // CBC, not AEAD
		"TLS_AES_128_GCM_SHA256",                   // TLS 1.3, not configurable
		"TLS_NULL_WITH_NULL_NULL",                  // unknown to Go
		"tls_ecdhe_ecdsa_with_aes_128_gcm_sha256 ", // names are exact
	} {
		_, err := NewZone(Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile,
			Ciphers: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", name}})
		if !errors.Is(err, ErrCipherSuite) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v, want ErrCipherSuite naming it", name, err)
		}
	}
}

func TestNewZoneErrors(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "e")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost"))
	missing := filepath.Join(dir, "missing.pem")
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no pem here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	caWithKey := filepath.Join(dir, "ca-with-key.pem")
	if err := os.WriteFile(caWithKey, append(append([]byte{}, p.ca.certPEM...), p.ca.keyPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	base := Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile, VerifyPeer: true}
	tests := []struct {
		name   string
		edit   func(o *Options)
		want   []string
		wantIs error
	}{
		{"missing cert", func(o *Options) { o.CertFile = missing }, []string{"read cert " + missing}, fs.ErrNotExist},
		{"missing key", func(o *Options) { o.KeyFile = missing }, []string{"read key " + missing}, fs.ErrNotExist},
		{"cert without PEM", func(o *Options) { o.CertFile = empty }, []string{"load cert " + empty}, nil},
		{"key is a certificate", func(o *Options) { o.KeyFile = certFile }, []string{"load cert " + certFile + " with key " + certFile}, nil},
		{"missing CA", func(o *Options) { o.CAFile = missing }, []string{"read ca file " + missing}, fs.ErrNotExist},
		{"CA without certificates", func(o *Options) { o.CAFile = empty }, []string{"ca file " + empty, "no PEM certificates"}, nil},
		{"CA bundle holding a key", func(o *Options) { o.CAFile = caWithKey }, []string{"ca file " + caWithKey, "private key"}, nil},
		{"cert without key", func(o *Options) { o.KeyFile = "" }, []string{"without a key file"}, nil},
		{"key without cert", func(o *Options) { o.CertFile = "" }, []string{"without a cert file"}, nil},
		{"no files and no lab", func(o *Options) { o.CertFile, o.KeyFile = "", "" }, []string{"no lab PKI"}, nil},
		{"bad client auth", func(o *Options) { o.ClientAuth = "optional" }, []string{`client auth "optional"`}, nil},
		{"request+verify without CA", func(o *Options) { o.ClientAuth, o.CAFile = "request", "" }, []string{"needs a CA file"}, nil},
		{"require+verify without CA", func(o *Options) { o.ClientAuth, o.CAFile = "require", "" }, []string{"needs a CA file"}, nil},
		{"ECDSA cert with only RSA suites", func(o *Options) { o.Ciphers = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"} }, []string{"cert " + certFile, "ECDSA key"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := base
			tt.edit(&opts)
			_, err := NewZone(opts)
			if err == nil {
				t.Fatal("NewZone succeeded")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `zone "carrier": `) {
				t.Errorf("error %q does not start with the zone", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %v", msg, tt.wantIs)
			}
			if strings.Count(msg, missing) > 1 {
				t.Errorf("error %q repeats the path", msg)
			}
		})
	}

	// The same cipher list is fine with TLS 1.3 as the floor, where Go
	// ignores it.
	opts := base
	opts.MinVersion = tls.VersionTLS13
	opts.Ciphers = []string{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}
	if _, err := NewZone(opts); err != nil {
		t.Errorf("TLS 1.3 floor with RSA-only suites: %v", err)
	}
}

func TestServerConfigClientAuthTable(t *testing.T) {
	p := newPKI(t, t.TempDir(), "t")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost"))
	tests := []struct {
		mode   string
		verify bool
		want   tls.ClientAuthType
	}{
		{"", true, tls.NoClientCert},
		{"none", true, tls.NoClientCert},
		{"none", false, tls.NoClientCert},
		{"request", true, tls.VerifyClientCertIfGiven},
		{"request", false, tls.RequestClientCert},
		{"require", true, tls.RequireAndVerifyClientCert},
		{"require", false, tls.RequireAnyClientCert},
	}
	for _, tt := range tests {
		z := mustZone(t, Options{Zone: "z", MinVersion: tls.VersionTLS13, CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile, VerifyPeer: tt.verify, ClientAuth: tt.mode})
		cfg := z.ServerConfig()
		if cfg.ClientAuth != tt.want {
			t.Errorf("%q verify=%v: ClientAuth = %v, want %v", tt.mode, tt.verify, cfg.ClientAuth, tt.want)
		}
		if (cfg.ClientCAs != nil) != (tt.want != tls.NoClientCert) {
			t.Errorf("%q verify=%v: ClientCAs = %v", tt.mode, tt.verify, cfg.ClientCAs)
		}
		if cfg.ClientCAs != nil && !cfg.ClientCAs.Equal(z.CAPool()) {
			t.Errorf("%q verify=%v: ClientCAs is not the zone's CA pool", tt.mode, tt.verify)
		}
		if cfg.MinVersion != tls.VersionTLS13 || cfg.MaxVersion != 0 {
			t.Errorf("versions = %#x..%#x", cfg.MinVersion, cfg.MaxVersion)
		}
		if cfg.GetCertificate == nil || len(cfg.Certificates) != 0 {
			t.Error("certificate must be served through GetCertificate only")
		}
		if cfg.InsecureSkipVerify || cfg.KeyLogWriter != nil || cfg.VerifyPeerCertificate != nil {
			t.Error("server config carries a verification bypass or a key log")
		}
		if !slices.Equal(cfg.CipherSuites, SecureCiphers) {
			t.Errorf("CipherSuites = %v", cfg.CipherSuites)
		}
	}
}

// InsecureSkipVerify is set in exactly one case: the zone's VerifyPeer is
// false, and then only on the outbound config. No other option (no CA file,
// a ServerName override, the lab certificate, client auth) turns it on.
// guard_test.go checks the source for the same property.
func TestVerificationSkippedOnlyByVerifyPeerFalse(t *testing.T) {
	p := newPKI(t, t.TempDir(), "s")
	certFile, keyFile := p.writeLeaf("sbc", p.leaf("localhost"))
	lab, err := EnsureLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, verify := range []bool{true, false} {
		for _, useLab := range []bool{true, false} {
			for _, caFile := range []string{"", p.caFile} {
				for _, serverName := range []string{"", "carrier.example"} {
					for _, mode := range []string{"none", "request", "require"} {
						opts := Options{Zone: "z", MinVersion: tls.VersionTLS12, CAFile: caFile, VerifyPeer: verify, ClientAuth: mode, ServerName: serverName}
						if useLab {
							opts.Lab = lab
						} else {
							opts.CertFile, opts.KeyFile = certFile, keyFile
						}
						z, err := NewZone(opts)
						if err != nil {
							if verify && mode != "none" && caFile == "" && !useLab {
								continue // refused: nothing to verify client certificates against
							}
							t.Fatalf("%+v: %v", opts, err)
						}
						cc := z.ClientConfig()
						if cc.InsecureSkipVerify != !verify {
							t.Errorf("%+v: ClientConfig InsecureSkipVerify = %v", opts, cc.InsecureSkipVerify)
						}
						if z.ServerConfig().InsecureSkipVerify {
							t.Errorf("%+v: ServerConfig InsecureSkipVerify", opts)
						}
						if cc.VerifyPeerCertificate != nil || cc.VerifyConnection != nil || cc.KeyLogWriter != nil || cc.MaxVersion != 0 {
							t.Errorf("%+v: ClientConfig carries a callback or key log", opts)
						}
						if cc.ServerName != serverName {
							t.Errorf("%+v: ServerName = %q", opts, cc.ServerName)
						}
						if wantRoots := caFile != "" || useLab; (cc.RootCAs != nil) != wantRoots {
							t.Errorf("%+v: RootCAs = %v, want set: %v", opts, cc.RootCAs, wantRoots)
						}
					}
				}
			}
		}
	}
}

func TestOutboundVerification(t *testing.T) {
	dir := t.TempDir()
	ours := newPKI(t, dir, "ours")
	foreign := newPKI(t, dir, "foreign")
	clientCert, clientKey := ours.writeLeaf("sbc", ours.leaf("sbc.example"))

	// A carrier whose certificate comes from leaf's CA.
	server := func(l *issued) *tls.Config {
		return &tls.Config{Certificates: []tls.Certificate{tlsCert(t, l)}}
	}
	zone := func(t *testing.T, edit func(o *Options)) *Zone {
		o := Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: clientCert, KeyFile: clientKey, CAFile: ours.caFile, VerifyPeer: true}
		if edit != nil {
			edit(&o)
		}
		return mustZone(t, o)
	}
	loopback := []string{"127.0.0.1", "localhost"}

	t.Run("right CA", func(t *testing.T) {
		srv, cli := exchange(t, server(ours.leaf(loopback...)), zone(t, nil).ClientConfig())
		mustSucceed(t, srv, cli)
		if len(cli.state.VerifiedChains) == 0 {
			t.Error("no verified chain")
		}
	})
	t.Run("other CA", func(t *testing.T) {
		srv, cli := exchange(t, server(foreign.leaf(loopback...)), zone(t, nil).ClientConfig())
		mustFail(t, srv, cli)
		var unknown x509.UnknownAuthorityError
		if !errors.As(cli.err, &unknown) {
			t.Errorf("client error = %v, want x509.UnknownAuthorityError", cli.err)
		}
	})
	t.Run("no CA file means system roots, not no verification", func(t *testing.T) {
		srv, cli := exchange(t, server(ours.leaf(loopback...)), zone(t, func(o *Options) { o.CAFile = "" }).ClientConfig())
		mustFail(t, srv, cli)
		var verr *tls.CertificateVerificationError
		if !errors.As(cli.err, &verr) {
			t.Errorf("client error = %v, want a certificate verification error", cli.err)
		}
	})
	t.Run("ServerName not in SANs", func(t *testing.T) {
		srv, cli := exchange(t, server(ours.leaf(loopback...)), zone(t, func(o *Options) { o.ServerName = "carrier.example" }).ClientConfig())
		mustFail(t, srv, cli)
		var host x509.HostnameError
		if !errors.As(cli.err, &host) || host.Host != "carrier.example" {
			t.Errorf("client error = %v, want x509.HostnameError for carrier.example", cli.err)
		}
	})
	t.Run("dialled IP not in SANs", func(t *testing.T) {
		srv, cli := exchange(t, server(ours.leaf("carrier.example")), zone(t, nil).ClientConfig())
		mustFail(t, srv, cli)
		var host x509.HostnameError
		if !errors.As(cli.err, &host) || host.Host != "127.0.0.1" {
			t.Errorf("client error = %v, want x509.HostnameError for 127.0.0.1", cli.err)
		}
	})
	t.Run("ServerName override in SANs", func(t *testing.T) {
		srv, cli := exchange(t, server(ours.leaf("carrier.example")), zone(t, func(o *Options) { o.ServerName = "carrier.example" }).ClientConfig())
		mustSucceed(t, srv, cli)
	})
	t.Run("VerifyPeer false skips verification", func(t *testing.T) {
		srv, cli := exchange(t, server(foreign.leaf("elsewhere.example")), zone(t, func(o *Options) { o.VerifyPeer = false }).ClientConfig())
		mustSucceed(t, srv, cli)
		if len(cli.state.VerifiedChains) != 0 {
			t.Error("chains verified although verification was off")
		}
	})
}

func TestMutualTLS(t *testing.T) {
	lab, err := EnsureLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	labPool := x509.NewCertPool()
	caPEM, err := os.ReadFile(lab.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	labPool.AppendCertsFromPEM(caPEM)
	peerCert, err := tls.LoadX509KeyPair(lab.PeerCertFile, lab.PeerKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	foreign := newPKI(t, t.TempDir(), "foreign")
	foreignCert := tlsCert(t, foreign.leaf("localhost"))

	clients := map[string][]tls.Certificate{"no cert": nil, "lab cert": {peerCert}, "foreign cert": {foreignCert}}
	tests := []struct {
		mode   string
		verify bool
		accept map[string]bool
	}{
		{"require", true, map[string]bool{"no cert": false, "lab cert": true, "foreign cert": false}},
		{"request", true, map[string]bool{"no cert": true, "lab cert": true, "foreign cert": false}},
		{"request", false, map[string]bool{"no cert": true, "lab cert": true, "foreign cert": true}},
		{"require", false, map[string]bool{"no cert": false, "lab cert": true, "foreign cert": true}},
		{"none", true, map[string]bool{"no cert": true, "lab cert": true, "foreign cert": true}},
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tt := range tests {
			// With the lab certificate and no CA file the lab CA is the
			// client CA pool.
			z := mustZone(t, Options{Zone: "clinic", MinVersion: tls.VersionTLS12, Lab: lab, VerifyPeer: tt.verify, ClientAuth: tt.mode})
			for name, certs := range clients {
				t.Run(tls.VersionName(version)+"/"+tt.mode+"/verify="+map[bool]string{true: "yes", false: "no"}[tt.verify]+"/"+name, func(t *testing.T) {
					client := &tls.Config{RootCAs: labPool, MinVersion: version, MaxVersion: version, Certificates: certs}
					// Present the certificate even when the server's CA list
					// does not name its issuer.
					if certs != nil {
						c := certs[0]
						client.Certificates = nil
						client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
					}
					srv, cli := exchange(t, z.ServerConfig(), client)
					if !tt.accept[name] {
						mustFail(t, srv, cli)
						return
					}
					mustSucceed(t, srv, cli)
					wantPeer := ""
					if certs != nil && tt.mode != "none" {
						wantPeer = Fingerprint(certs[0].Leaf)
					}
					if got := peerFingerprint(srv); got != wantPeer {
						t.Errorf("server saw client certificate %q, want %q", got, wantPeer)
					}
				})
			}
		}
	}
}

// The outbound side of mTLS: a zone presents its certificate to a carrier
// that requires one.
func TestClientConfigPresentsZoneCertificate(t *testing.T) {
	lab, err := EnsureLab(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	carrier := mustZone(t, Options{Zone: "carrier-side", MinVersion: tls.VersionTLS12, CertFile: lab.PeerCertFile, KeyFile: lab.PeerKeyFile, CAFile: lab.CAFile, VerifyPeer: true, ClientAuth: "require"})
	sbc := mustZone(t, Options{Zone: "carrier", MinVersion: tls.VersionTLS12, Lab: lab, VerifyPeer: true})
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		client := sbc.ClientConfig()
		client.MaxVersion = version // test only: pin the version under test
		srv, cli := exchange(t, carrier.ServerConfig(), client)
		mustSucceed(t, srv, cli)
		if got, want := peerFingerprint(srv), Fingerprint(sbc.Leaf()); got != want {
			t.Errorf("%s: carrier saw client certificate %q, want %q", tls.VersionName(version), got, want)
		}
		if got, want := peerFingerprint(cli), Fingerprint(carrier.Leaf()); got != want {
			t.Errorf("%s: sbc saw server certificate %q, want %q", tls.VersionName(version), got, want)
		}
	}
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "r")
	first := p.leaf("localhost", "127.0.0.1")
	certFile, keyFile := p.writeLeaf("sbc", first)
	z := mustZone(t, Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile, CAFile: p.caFile, VerifyPeer: true, ClientAuth: "require"})
	serverCfg := z.ServerConfig() // built once, used across the reload
	clientCfg := z.ClientConfig()
	// The zone talks to itself: its listener requires a client certificate
	// from the same CA, and its client presents one.
	srv, cli := exchange(t, serverCfg, clientCfg)
	mustSucceed(t, srv, cli)
	if got := peerFingerprint(cli); got != Fingerprint(first.cert) {
		t.Fatalf("before reload the client saw %s", got)
	}

	second := p.leaf("localhost", "127.0.0.1")
	if second.cert.SerialNumber.Cmp(first.cert.SerialNumber) == 0 {
		t.Fatal("test leaves share a serial")
	}
	p.writeLeaf("sbc", second)
	if err := z.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if Fingerprint(z.Leaf()) != Fingerprint(second.cert) {
		t.Error("Leaf() is not the reloaded certificate")
	}
	srv, cli = exchange(t, serverCfg, clientCfg)
	mustSucceed(t, srv, cli)
	if got := peerFingerprint(cli); got != Fingerprint(second.cert) {
		t.Errorf("after reload the client saw server certificate %s, want the new one", got)
	}
	if got := peerFingerprint(srv); got != Fingerprint(second.cert) {
		t.Errorf("after reload the server saw client certificate %s, want the new one", got)
	}

	// Broken files: Reload fails, names the file, and the zone keeps serving
	// the second certificate.
	broken := []struct {
		name  string
		path  string
		data  []byte
		wants string
	}{
		{"garbage cert", certFile, []byte("not a certificate"), certFile},
		{"mismatched key", keyFile, p.leaf("localhost").keyPEM, keyFile},
		{"garbage CA", p.caFile, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), p.caFile},
	}
	for _, b := range broken {
		t.Run(b.name, func(t *testing.T) {
			good, err := os.ReadFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(b.path, b.data, 0o600); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = os.WriteFile(b.path, good, 0o600) }()
			err = z.Reload()
			if err == nil || !strings.Contains(err.Error(), b.wants) || !strings.HasPrefix(err.Error(), `zone "carrier": `) {
				t.Fatalf("Reload error = %v, want one naming %s", err, b.wants)
			}
			if Fingerprint(z.Leaf()) != Fingerprint(second.cert) {
				t.Error("a failed Reload changed Leaf()")
			}
			if z.CAPool() == nil {
				t.Error("a failed Reload dropped the CA pool")
			}
			srv, cli := exchange(t, serverCfg, clientCfg)
			mustSucceed(t, srv, cli)
			if got := peerFingerprint(cli); got != Fingerprint(second.cert) {
				t.Errorf("after a failed reload the client saw %s", got)
			}
		})
	}
}

func TestKeyNeverInErrors(t *testing.T) {
	dir := t.TempDir()
	p := newPKI(t, dir, "k")
	l := p.leaf("localhost")
	certFile, _ := p.writeLeaf("sbc", l)
	secret := l.keyPEM
	body := strings.Join(slices.DeleteFunc(strings.Split(string(secret), "\n"), func(s string) bool {
		return s == "" || strings.HasPrefix(s, "-----")
	}), "\n")
	lines := strings.Split(body, "\n")
	corrupt := []byte(strings.Replace(string(secret), lines[1][:10], "!!!!!!!!!!", 1))
	truncated := []byte(strings.Replace(string(secret), lines[len(lines)-1], "", 1))
	otherKey := p.leaf("localhost").keyPEM
	block, _ := pem.Decode(secret)
	der := slices.Clone(block.Bytes)
	for i := len(der) / 3; i < len(der)/3+8; i++ {
		der[i] ^= 0xff
	}
	corruptDER := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	cases := map[string][]byte{
		"mismatched key":      otherKey,
		"corrupt base64":      corrupt,
		"truncated body":      truncated,
		"corrupt DER":         corruptDER,
		"body without armour": []byte(body + "\n"),
		"unknown block type":  []byte(strings.ReplaceAll(string(secret), "PRIVATE KEY", "SECRET STUFF")),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			keyFile := filepath.Join(t.TempDir(), "bad.key")
			if err := os.WriteFile(keyFile, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewZone(Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile})
			if err == nil {
				t.Fatal("NewZone accepted a bad key")
			}
			msg := err.Error()
			if !strings.Contains(msg, keyFile) {
				t.Errorf("error %q does not name the key file", msg)
			}
			for _, key := range [][]byte{secret, otherKey, data} {
				for _, line := range strings.Split(string(key), "\n") {
					line = strings.TrimSpace(line)
					if strings.HasPrefix(line, "-----") || len(line) < 12 {
						continue
					}
					for i := 0; i+12 <= len(line); i += 4 {
						if strings.Contains(msg, line[i:i+12]) {
							t.Fatalf("error quotes key material %q: %s", line[i:i+12], msg)
						}
					}
				}
			}
		})
	}
}

func TestScrubKey(t *testing.T) {
	p := newPKI(t, t.TempDir(), "s")
	key := p.leaf("localhost").keyPEM
	line := strings.Split(string(key), "\n")[1]
	if got := scrubKey(errors.New("parse failed near "+line[5:40]), key); !errors.Is(got, errKeyWithheld) {
		t.Errorf("a quoted base64 run passed: %v", got)
	}
	if got := scrubKey(errors.New("private key does not match public key"), key); got.Error() != "private key does not match public key" {
		t.Errorf("a harmless message was replaced: %v", got)
	}
}

func TestUninitialisedZone(t *testing.T) {
	_, p := loopbackZone(t, tls.VersionTLS12)
	for name, z := range map[string]*Zone{"nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if z.Leaf() != nil || z.CAPool() != nil || z.Expiring(time.Now(), time.Hour) != "" {
				t.Error("an uninitialised zone reports material")
			}
			if err := z.Reload(); !errors.Is(err, errNotInitialised) {
				t.Errorf("Reload = %v", err)
			}
			sc, cc := z.ServerConfig(), z.ClientConfig()
			if sc.MinVersion < tls.VersionTLS12 || cc.MinVersion < tls.VersionTLS12 || cc.InsecureSkipVerify {
				t.Error("an uninitialised zone hands out a weak config")
			}
			srv, cli := exchange(t, sc, &tls.Config{RootCAs: p.pool()})
			mustFail(t, srv, cli)
			good, _ := loopbackZone(t, tls.VersionTLS12)
			srv, cli = exchange(t, good.ServerConfig(), cc)
			mustFail(t, srv, cli)
		})
	}
}

func TestExpiring(t *testing.T) {
	p := newPKI(t, t.TempDir(), "x")
	now := time.Now()
	l, err := newLeaf(p.ca, "sbc", []string{"localhost"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := p.writeLeaf("sbc", l)
	z := mustZone(t, Options{Zone: "carrier", MinVersion: tls.VersionTLS12, CertFile: certFile, KeyFile: keyFile})
	leaf := z.Leaf()
	day := 24 * time.Hour
	tests := []struct {
		name string
		now  time.Time
		d    time.Duration
		want []string // empty: no warning
	}{
		{"fresh", leaf.NotAfter.Add(-30 * day), 7 * day, nil},
		{"within window", leaf.NotAfter.Add(-5 * day), 7 * day, []string{"expires in 5 days", leaf.NotAfter.UTC().Format(time.RFC3339)}},
		{"hours left", leaf.NotAfter.Add(-3 * time.Hour), day, []string{"expires in 3 hours"}},
		{"at the window edge", leaf.NotAfter.Add(-7 * day), 7 * day, []string{"expires in 7 days"}},
		{"just outside the window", leaf.NotAfter.Add(-7*day - time.Second), 7 * day, nil},
		{"expired", leaf.NotAfter.Add(3 * day), 7 * day, []string{"expired 3 days ago"}},
		{"expired, zero window", leaf.NotAfter.Add(time.Minute), 0, []string{"expired"}},
		{"not yet valid", leaf.NotBefore.Add(-time.Hour), 7 * day, []string{"not valid until"}},
	}
	for _, tt := range tests {
		got := z.Expiring(tt.now, tt.d)
		if len(tt.want) == 0 {
			if got != "" {
				t.Errorf("%s: Expiring = %q, want none", tt.name, got)
			}
			continue
		}
		for _, w := range append([]string{`zone "carrier"`, certFile, Fingerprint(leaf)[:16]}, tt.want...) {
			if !strings.Contains(got, w) {
				t.Errorf("%s: Expiring = %q, missing %q", tt.name, got, w)
			}
		}
	}
}

// Handshakes read the material while Reload swaps it; run with -race.
func TestReloadConcurrent(t *testing.T) {
	z, _ := loopbackZone(t, tls.VersionTLS12)
	sc, cc := z.ServerConfig(), z.ClientConfig()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			if err := z.Reload(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if c, err := sc.GetCertificate(&tls.ClientHelloInfo{}); err != nil || c.Leaf == nil {
			t.Fatalf("GetCertificate = %v, %v", c, err)
		}
		if _, err := cc.GetClientCertificate(&tls.CertificateRequestInfo{}); err != nil {
			t.Fatal(err)
		}
		_ = z.Leaf()
		_ = z.CAPool()
	}
	<-done
}
