package b2bua

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// handshakeTimeout bounds a TLS handshake on a listener, so a peer that
// connects and says nothing cannot hold a connection open.
const handshakeTimeout = 10 * time.Second

// handshakeResult is the outcome of one server-side TLS handshake.
type handshakeResult struct {
	Local, Remote string
	// ClientMax is the highest version in the ClientHello (0 if none came).
	ClientMax policy.TLSVersion
	SNI       string
	State     *tls.ConnectionState // nil on failure
	Err       error
}

// tlsListener performs TLS on accepted connections itself, so that every
// handshake's outcome, refusals included, is captured: the ClientHello via
// GetConfigForClient, the result via the first Read. The handshake runs in
// the connection's reader goroutine, never in the accept loop.
type tlsListener struct {
	net.Listener
	cfg    *tls.Config
	report func(handshakeResult)
	states *connStates
}

func (l *tlsListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	hc := &hsConn{raw: raw, report: l.report, states: l.states}
	cfg := l.cfg.Clone()
	base := l.cfg.GetConfigForClient
	cfg.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		hc.sni = chi.ServerName
		for _, v := range chi.SupportedVersions {
			if v&0x0f0f == 0x0a0a { // GREASE (RFC 8701)
				continue
			}
			hc.clientMax = max(hc.clientMax, policy.TLSVersion(v))
		}
		if base != nil {
			return base(chi)
		}
		return nil, nil
	}
	hc.Conn = tls.Server(raw, cfg)
	return hc, nil
}

// hsConn is a server-side TLS connection that reports its handshake.
type hsConn struct {
	*tls.Conn
	raw       net.Conn
	report    func(handshakeResult)
	states    *connStates
	once      sync.Once
	hsErr     error
	sni       string
	clientMax policy.TLSVersion
	state     *tls.ConnectionState // after a successful handshake
	closeOnce sync.Once
}

func (c *hsConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		defer cancel()
		err := c.Conn.HandshakeContext(ctx)
		res := handshakeResult{
			Local: c.raw.LocalAddr().String(), Remote: c.raw.RemoteAddr().String(),
			ClientMax: c.clientMax, SNI: c.sni, Err: err,
		}
		if err == nil {
			st := c.Conn.ConnectionState()
			res.State, c.state = &st, &st
			c.states.put(res.Remote, &st)
		} else {
			c.hsErr = err
		}
		c.report(res)
	})
	return c.hsErr
}

func (c *hsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		// The refusal is recorded; to sipgo this is just a closed peer.
		return 0, io.EOF
	}
	return c.Conn.Read(b)
}

func (c *hsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

func (c *hsConn) Close() error {
	c.closeOnce.Do(func() {
		if c.state != nil {
			c.states.release(c.raw.RemoteAddr().String(), c.state)
		}
	})
	return c.Conn.Close()
}

// stateGrace is how long a closed connection's TLS state stays known: a
// request read just before the close (one followed by garbage, which makes
// sipgo drop the connection) is still handled on its own goroutine, and
// must be judged by the handshake that carried it.
const stateGrace = 5 * time.Second

// connStates maps a TLS peer's remote address to its connection state, so a
// request can be tied to the handshake that carried it.
type connStates struct {
	mu sync.Mutex
	m  map[string]*tls.ConnectionState
	// after runs f once stateGrace has passed (tests run it themselves).
	after func(f func())
}

func newConnStates() *connStates {
	return &connStates{m: map[string]*tls.ConnectionState{},
		after: func(f func()) { time.AfterFunc(stateGrace, f) }}
}

func (s *connStates) put(remote string, st *tls.ConnectionState) {
	s.mu.Lock()
	s.m[remote] = st
	s.mu.Unlock()
}

// release forgets st, remote's state, after stateGrace, unless a newer
// connection from the same address has replaced it by then.
func (s *connStates) release(remote string, st *tls.ConnectionState) {
	s.after(func() {
		s.mu.Lock()
		if s.m[remote] == st {
			delete(s.m, remote)
		}
		s.mu.Unlock()
	})
}

func (s *connStates) get(remote string) *tls.ConnectionState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[remote]
}

// tlsFacts turns a connection state into policy facts. verifyRequired says
// whether the zone demanded verification, which tells "not verified" apart
// from "verification disabled".
func tlsFacts(st *tls.ConnectionState, verifyEnabled bool) *policy.TLSFacts {
	if st == nil {
		return nil
	}
	f := &policy.TLSFacts{
		Version:     policy.TLSVersion(st.Version),
		CipherSuite: tls.CipherSuiteName(st.CipherSuite),
		ServerName:  st.ServerName,
	}
	if len(st.PeerCertificates) > 0 {
		leaf := st.PeerCertificates[0]
		cf := certFacts(leaf)
		cf.Verified = len(st.VerifiedChains) > 0
		if cf.Verified {
			chain := st.VerifiedChains[0]
			anchor := sha256.Sum256(chain[len(chain)-1].Raw)
			cf.AnchorSHA256 = hex.EncodeToString(anchor[:])
		} else {
			if verifyEnabled {
				cf.VerifyError = "certificate not verified"
			} else {
				cf.VerifyError = "verification disabled (verify_peer = false)"
			}
		}
		f.PeerCert = &cf
	}
	return f
}

func certFacts(c *x509.Certificate) policy.CertFacts { return policy.CertFactsOf(c) }

// certFromError extracts the certificate a failed verification was about,
// for connection-event records.
func certFromError(err error) *x509.Certificate {
	var uerr x509.UnknownAuthorityError
	if errors.As(err, &uerr) && uerr.Cert != nil {
		return uerr.Cert
	}
	var herr x509.HostnameError
	if errors.As(err, &herr) && herr.Certificate != nil {
		return herr.Certificate
	}
	var cerr x509.CertificateInvalidError
	if errors.As(err, &cerr) && cerr.Cert != nil {
		return cerr.Cert
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) && len(verr.UnverifiedCertificates) > 0 {
		return verr.UnverifiedCertificates[0]
	}
	return nil
}
