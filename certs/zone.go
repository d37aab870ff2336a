// Package certs owns parapet's TLS material: loading certificates, keys and
// CA bundles, building each zone's tls.Config with the TLS floor, serving
// certificates through callbacks so that Reload takes effect without a
// restart, expiry checks, and the generation of lab certificates.
//
// It keeps three promises of the product:
//
//   - No TLS below 1.2. Every tls.Config built here goes through one function
//     (applyFloor) that refuses anything but TLS 1.2 and TLS 1.3. MaxVersion
//     and KeyLogWriter are never set.
//   - Certificate verification is on by default. The only way to skip it is
//     Options.VerifyPeer = false, which sets InsecureSkipVerify on the
//     outbound config and nothing else.
//   - No key material in errors. Errors name files, never their contents.
//
// The package imports only the standard library and nothing of parapet's. It
// does not log; callers log the errors and the Expiring warnings it returns.
package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Client authentication modes accepted in Options.ClientAuth.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// errNotInitialised is returned by a Zone that was not built by NewZone.
var errNotInitialised = errors.New("certs: zone not initialised (use NewZone)")

// Options configures one zone's TLS.
//
// ClientAuth is "none", "request" or "require" (the empty string means
// "none"). Together with VerifyPeer it selects the listener's
// tls.ClientAuthType:
//
//	none                    tls.NoClientCert
//	request + VerifyPeer    tls.VerifyClientCertIfGiven   (needs a CA)
//	request, !VerifyPeer    tls.RequestClientCert
//	require + VerifyPeer    tls.RequireAndVerifyClientCert (needs a CA)
//	require, !VerifyPeer    tls.RequireAnyClientCert
//
// "Needs a CA" means CAFile, or the lab CA when the zone uses the lab
// certificate: without one Go would verify client certificates against the
// system roots, which would let any publicly trusted certificate in.
type Options struct {
	// Zone is the zone's name, used in error messages.
	Zone string
	// MinVersion is tls.VersionTLS12 or tls.VersionTLS13. Anything else,
	// including 0, is an error: the floor is never silently raised.
	MinVersion uint16
	// CertFile and KeyFile are the PEM certificate (chain) and private key.
	// Both empty means the lab certificate from Lab. A file holding the
	// certificate followed by the key may be given as both.
	CertFile, KeyFile string
	// CAFile is a PEM bundle of trusted certificates. It is the root pool for
	// outbound verification and the client CA pool for listeners. Empty means
	// the system roots outbound and no client CA pool, except with the lab
	// certificate, where it means the lab CA for both.
	CAFile string
	// VerifyPeer turns on verification of the peer's certificate: the chain
	// and the name outbound, the chain of a client certificate inbound.
	// VerifyPeer = false is the only way verification is ever skipped.
	VerifyPeer bool
	// ClientAuth is "none", "request" or "require"; see the table above.
	ClientAuth string
	// Ciphers are Go names of TLS 1.2 suites (see ParseCiphers). Empty means
	// SecureCiphers. They have no effect on TLS 1.3, whose suites Go fixes.
	Ciphers []string
	// ServerName overrides the name verified in the server's certificate on
	// outbound connections. Empty means the dialled host (sipgo and
	// tls.Dial fill it in).
	ServerName string
	// Lab is the lab PKI used when CertFile and KeyFile are empty.
	Lab *LabPKI
}

// Zone is one zone's TLS material and the tls.Configs built from it.
//
// Certificates are served through GetCertificate (listeners) and
// GetClientCertificate (outbound mTLS), so a successful Reload is seen by the
// next handshake on every config already handed out. The CA pool is a plain
// field of tls.Config (RootCAs, ClientCAs), and the configs handed out are
// kept by their users (sipgo keeps its dialling config for the life of the
// process), so it is built once, by NewZone, from the bundle loaded then:
// each of its certificates carries a constraint that accepts a chain only
// while the certificate is in the bundle currently loaded. A Reload can so
// withdraw a CA at once from every config already serving; it cannot add one,
// and refuses a bundle holding a certificate that was not in the bundle at
// start (a restart adds it). After a successful Reload, every config handed
// out trusts exactly the reloaded bundle.
//
// A Zone is safe for concurrent use. Its methods do not panic on a nil or
// zero Zone; such a Zone hands out configs that fail every handshake.
type Zone struct {
	name       string
	floor      uint16
	ciphers    []uint16
	certFile   string
	keyFile    string
	caFile     string
	verifyPeer bool
	clientAuth tls.ClientAuthType
	serverName string

	// anchors is the CA pool of every config handed out: the bundle loaded
	// by NewZone, each certificate constrained to the current material's
	// bundle. nil without a CA file (the system roots outbound).
	anchors *x509.CertPool
	// initial holds the SHA-256 of each certificate in anchors.
	initial map[[32]byte]bool

	reloadMu sync.Mutex // serialises Reload
	cur      atomic.Pointer[material]
}

// material is one consistent generation of a zone's files. It is never
// modified after it is stored; Reload replaces it as a whole.
type material struct {
	cert *tls.Certificate // Leaf is set
	// cas is the CA bundle in file order and trusted the set of their
	// SHA-256 sums; both nil without a CA file.
	cas     []*x509.Certificate
	trusted map[[32]byte]bool
}

// NewZone validates opts and loads the certificate, key and CA bundle now, so
// that a bad file fails at startup with an error naming the file.
func NewZone(opts Options) (*Zone, error) {
	z := &Zone{
		name:       opts.Zone,
		floor:      opts.MinVersion,
		certFile:   opts.CertFile,
		keyFile:    opts.KeyFile,
		caFile:     opts.CAFile,
		verifyPeer: opts.VerifyPeer,
		serverName: opts.ServerName,
	}
	if err := checkFloor(opts.MinVersion); err != nil {
		return nil, z.errorf("%w", err)
	}
	ciphers, err := ParseCiphers(opts.Ciphers)
	if err != nil {
		return nil, z.errorf("%w", err)
	}
	z.ciphers = ciphers
	z.clientAuth, err = clientAuthType(opts.ClientAuth, opts.VerifyPeer)
	if err != nil {
		return nil, z.errorf("%w", err)
	}
	switch {
	case opts.CertFile == "" && opts.KeyFile == "":
		if opts.Lab == nil {
			return nil, z.errorf("no cert file and key file, and no lab PKI to fall back on")
		}
		if opts.Lab.CertFile == "" || opts.Lab.KeyFile == "" {
			return nil, z.errorf("lab PKI has no certificate or key file (use EnsureLab)")
		}
		z.certFile, z.keyFile = opts.Lab.CertFile, opts.Lab.KeyFile
		if z.caFile == "" {
			z.caFile = opts.Lab.CAFile
		}
	case opts.CertFile == "":
		return nil, z.errorf("key file %s given without a cert file", opts.KeyFile)
	case opts.KeyFile == "":
		return nil, z.errorf("cert file %s given without a key file", opts.CertFile)
	}
	if z.caFile == "" && (z.clientAuth == tls.VerifyClientCertIfGiven || z.clientAuth == tls.RequireAndVerifyClientCert) {
		return nil, z.errorf("client auth %q with peer verification needs a CA file: without one client certificates would be checked against the system roots", opts.ClientAuth)
	}
	m, err := z.load()
	if err != nil {
		return nil, err
	}
	if m.cas != nil {
		z.anchors, z.initial = x509.NewCertPool(), map[[32]byte]bool{}
		for _, c := range m.cas {
			sum := sha256.Sum256(c.Raw)
			z.initial[sum] = true
			z.anchors.AddCertWithConstraint(c, func([]*x509.Certificate) error {
				if cur := z.material(); cur != nil && cur.trusted[sum] {
					return nil
				}
				return fmt.Errorf("CA %q (sha256 %x…) was withdrawn from the zone's CA bundle by a reload", c.Subject.CommonName, sum[:8])
			})
		}
	}
	z.cur.Store(m)
	return z, nil
}

// clientAuthType maps the ClientAuth mode and VerifyPeer to Go's type.
func clientAuthType(mode string, verify bool) (tls.ClientAuthType, error) {
	switch mode {
	case "", ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthRequest:
		if verify {
			return tls.VerifyClientCertIfGiven, nil
		}
		return tls.RequestClientCert, nil
	case ClientAuthRequire:
		if verify {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.RequireAnyClientCert, nil
	}
	return tls.NoClientCert, fmt.Errorf("client auth %q: want none, request or require", mode)
}

// errorf prefixes an error with the zone's name.
func (z *Zone) errorf(format string, args ...any) error {
	return fmt.Errorf("zone %q: "+format, append([]any{z.name}, args...)...)
}

// load reads the zone's files into a new material.
func (z *Zone) load() (*material, error) {
	cert, err := loadKeyPair(z.certFile, z.keyFile)
	if err != nil {
		return nil, z.errorf("%w", err)
	}
	if z.floor == tls.VersionTLS12 {
		if err := checkCipherKey(z.ciphers, cert.Leaf); err != nil {
			return nil, z.errorf("cert %s: %w", z.certFile, err)
		}
	}
	m := &material{cert: cert}
	if z.caFile != "" {
		m.cas, err = loadCAFile(z.caFile)
		if err != nil {
			return nil, z.errorf("%w", err)
		}
		m.trusted = map[[32]byte]bool{}
		for _, c := range m.cas {
			m.trusted[sha256.Sum256(c.Raw)] = true
		}
	}
	return m, nil
}

// material returns the current material, or nil for an uninitialised Zone.
func (z *Zone) material() *material {
	if z == nil {
		return nil
	}
	return z.cur.Load()
}

// ServerConfig returns a new tls.Config for a listener of this zone: the TLS
// floor, the zone's TLS 1.2 cipher suites (Go ignores them for TLS 1.3),
// the certificate through GetCertificate, and ClientAuth with ClientCAs as
// described on Options. The caller may add its own callbacks (for example a
// GetConfigForClient that records the ClientHello and returns nil).
func (z *Zone) ServerConfig() *tls.Config {
	m := z.material()
	if m == nil {
		return refusingConfig()
	}
	cfg := &tls.Config{
		GetCertificate: z.getCertificate,
		CipherSuites:   slices.Clone(z.ciphers),
		ClientAuth:     z.clientAuth,
	}
	if z.clientAuth != tls.NoClientCert {
		// With VerifyPeer this is the pool client certificates must chain
		// to; without it, only the list of acceptable CAs sent to clients
		// (which keeps naming a CA a reload withdrew, until a restart).
		cfg.ClientCAs = z.anchors
	}
	if err := applyFloor(cfg, z.floor); err != nil {
		return refusingConfig()
	}
	return cfg
}

// ClientConfig returns a new tls.Config for outbound connections of this
// zone: the TLS floor, the zone's TLS 1.2 cipher suites, RootCAs (the CA
// pool, or nil for the system roots; see Zone on reloads), the ServerName
// override, and the zone's certificate through GetClientCertificate for
// servers that ask for one.
// InsecureSkipVerify is set only when the zone has VerifyPeer = false.
func (z *Zone) ClientConfig() *tls.Config {
	m := z.material()
	if m == nil {
		return refusingConfig()
	}
	cfg := &tls.Config{
		RootCAs:              z.anchors,
		ServerName:           z.serverName,
		GetClientCertificate: z.getClientCertificate,
		CipherSuites:         slices.Clone(z.ciphers),
		// The one place verification can be turned off, and only by the
		// zone's explicit verify_peer = false.
		InsecureSkipVerify: !z.verifyPeer,
	}
	if err := applyFloor(cfg, z.floor); err != nil {
		return refusingConfig()
	}
	return cfg
}

// refusingConfig is handed out by a Zone that has no material: every
// handshake made with it fails, on either side.
func refusingConfig() *tls.Config {
	cfg := &tls.Config{
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return nil, errNotInitialised
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return nil, errNotInitialised
		},
		VerifyConnection: func(tls.ConnectionState) error {
			return errNotInitialised
		},
	}
	_ = applyFloor(cfg, tls.VersionTLS13) // a valid version: cannot fail
	return cfg
}

// getCertificate serves the current certificate to every client, whatever
// its SNI.
func (z *Zone) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := z.material()
	if m == nil {
		return nil, errNotInitialised
	}
	return m.cert, nil
}

// getClientCertificate presents the current certificate when the server asks
// for one, following Go's own rule for tls.Config.Certificates: it is sent
// when the server can accept it (signature schemes and, if the server lists
// any, acceptable CAs); otherwise no certificate is sent and the server
// decides.
func (z *Zone) getClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	m := z.material()
	if m == nil {
		return nil, errNotInitialised
	}
	if err := cri.SupportsCertificate(m.cert); err != nil {
		return &tls.Certificate{}, nil
	}
	return m.cert, nil
}

// Reload re-reads the certificate, key and CA bundle. On success the next
// handshake on any config from ServerConfig or ClientConfig uses the new
// certificate and trusts exactly the new CA bundle. On failure the old
// material stays in use and the error names the bad file. A bundle holding
// a certificate that was not in the bundle loaded by NewZone is refused
// (see Zone). Reload is Prepare followed by Commit.
func (z *Zone) Reload() error {
	if z.material() == nil {
		return errNotInitialised
	}
	z.reloadMu.Lock()
	defer z.reloadMu.Unlock()
	p, err := z.Prepare()
	if err != nil {
		return err
	}
	p.Commit()
	return nil
}

// Pending is a zone's material read by Prepare and not yet in force.
type Pending struct {
	z *Zone
	m *material
}

// Prepare reads the zone's files as Reload does, checks them, and returns
// them without putting them in force, so that a caller reloading several
// zones can apply all of them or none. The caller serialises Prepare and
// Commit with Reload.
func (z *Zone) Prepare() (*Pending, error) {
	if z.material() == nil {
		return nil, errNotInitialised
	}
	m, err := z.load()
	if err != nil {
		return nil, err
	}
	for i, c := range m.cas {
		if sum := sha256.Sum256(c.Raw); !z.initial[sum] {
			return nil, z.errorf("ca file %s: certificate %d (%s) was not in the bundle loaded at start; connections already configured cannot trust a CA added since: restart parapet to add it",
				z.caFile, i+1, describe(c))
		}
	}
	return &Pending{z: z, m: m}, nil
}

// Trust is the trust material Prepare read.
func (p *Pending) Trust() Trust { return p.m.trust() }

// Commit puts the material in force.
func (p *Pending) Commit() { p.z.cur.Store(p.m) }

// Trust is what a zone's TLS presents and trusts, as Fingerprint values
// (lowercase hex SHA-256 of the DER), never paths: what a policy hash
// covers of the zone's TLS material.
type Trust struct {
	// Cert is the fingerprint of parapet's own certificate (the leaf).
	Cert string
	// CAs are the fingerprints of the certificates of the CA bundle in
	// force (CAFile, or the lab CA), sorted, without duplicates. nil when
	// the zone has no CA bundle: outbound verification uses the system
	// roots, and no client certificate is verified.
	CAs []string
}

func (m *material) trust() Trust {
	t := Trust{Cert: Fingerprint(m.cert.Leaf)}
	for _, c := range m.cas {
		t.CAs = append(t.CAs, Fingerprint(c))
	}
	slices.Sort(t.CAs)
	t.CAs = slices.Compact(t.CAs)
	return t
}

// Trust returns the fingerprints of the material in force; the zero Trust
// for an uninitialised Zone.
func (z *Zone) Trust() Trust {
	m := z.material()
	if m == nil {
		return Trust{}
	}
	return m.trust()
}

// Leaf returns the current leaf certificate, or nil for an uninitialised
// Zone. The caller must not modify it.
func (z *Zone) Leaf() *x509.Certificate {
	m := z.material()
	if m == nil {
		return nil
	}
	return m.cert.Leaf
}

// CAPool returns the CA pool of the configs the zone hands out: from CAFile,
// or the lab CA when the zone uses the lab certificate without a CAFile,
// restricted to the bundle currently loaded (see Zone). It is nil when there
// is no CA file (outbound verification then uses the system roots).
func (z *Zone) CAPool() *x509.CertPool {
	if z.material() == nil {
		return nil
	}
	return z.anchors
}

// Expiring returns a human warning when the current leaf has expired, expires
// within d of now, or is not valid yet at now; otherwise "". The warning names
// the zone and the certificate file.
func (z *Zone) Expiring(now time.Time, d time.Duration) string {
	leaf := z.Leaf()
	if leaf == nil {
		return ""
	}
	return expiryWarning(fmt.Sprintf("zone %q: certificate %s", z.name, z.certFile), leaf, now, d)
}
