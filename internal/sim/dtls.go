package sim

// DTLS-SRTP (RFC 5763, RFC 5764) for the simulated peers, with pion/dtls
// used directly: the handshake runs on the session's media socket, whose
// reader hands it the DTLS records (RFC 7983: first byte 20..63); each
// side's certificate is checked against the a=fingerprint of its SDP, and
// the SRTP keys the handshake exports become the session's send and recv
// keys, so the SDES code paths (Send, receive, Packet) protect the media.

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	stdio "io"
	"net"
	"sync"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"
)

// dtlsHandshakeTimeout bounds a session's handshake, retransmissions included.
const dtlsHandshakeTimeout = 10 * time.Second

// dtlsSuites are the SRTP protection profiles a peer offers in its
// handshake unless told otherwise, in order of preference.
var dtlsSuites = []string{"AEAD_AES_256_GCM", "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"}

// dtlsProfiles maps SDES suite names to DTLS-SRTP protection profiles
// (RFC 5764 section 4.1.2, RFC 7714 section 14.2).
var dtlsProfiles = []struct {
	suite   string
	profile dtls.SRTPProtectionProfile
}{
	{"AEAD_AES_256_GCM", dtls.SRTP_AEAD_AES_256_GCM},
	{"AEAD_AES_128_GCM", dtls.SRTP_AEAD_AES_128_GCM},
	{"AES_CM_128_HMAC_SHA1_80", dtls.SRTP_AES128_CM_HMAC_SHA1_80},
	{"AES_CM_128_HMAC_SHA1_32", dtls.SRTP_AES128_CM_HMAC_SHA1_32},
}

// dtlsState is a session's DTLS-SRTP association.
type dtlsState struct {
	setup  string        // this peer's a=setup: active (DTLS client) or passive (server)
	remote []fingerprint // the other side's, from its SDP
	mux    bool          // a=rtcp-mux in this peer's SDP
	suites []string      // the SRTP suites this peer offers in the handshake

	once  sync.Once
	ready chan struct{} // closed when the handshake ended, keys or error
	err   error         // why it failed; read after ready is closed
}

func newDTLSState(setup string, remote []fingerprint, mux bool, suites []string) *dtlsState {
	if len(suites) == 0 {
		suites = dtlsSuites
	}
	return &dtlsState{setup: setup, remote: remote, mux: mux, suites: suites, ready: make(chan struct{})}
}

func (d *dtlsState) client() bool { return d.setup == "active" }

func (d *dtlsState) finish(err error) {
	d.once.Do(func() {
		d.err = err
		close(d.ready)
	})
}

// errFingerprint is the handshake error when the other side's certificate
// does not match the a=fingerprint of its SDP.
var errFingerprint = errors.New("sim: peer certificate does not match the a=fingerprint of its SDP")

func (d *dtlsState) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("sim: peer sent no certificate")
	}
	for _, f := range d.remote {
		if sum, ok := sumOf(f.hash, raw[0]); ok && bytes.Equal(sum, f.value) {
			return nil
		}
	}
	return errFingerprint
}

// dtlsNow is the session's DTLS-SRTP state, nil without DTLS-SRTP.
func (s *Session) dtlsNow() *dtlsState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dtls
}

// DTLSError is why the session's DTLS-SRTP handshake failed; nil while it
// runs, once it succeeded, and on a session without DTLS-SRTP.
func (s *Session) DTLSError() error {
	d := s.dtlsNow()
	if d == nil {
		return nil
	}
	select {
	case <-d.ready:
		return d.err
	default:
		return nil
	}
}

// DTLSSetup is the session's DTLS role as its SDP says: "active" (it is
// the DTLS client) or "passive" (the server); "" without DTLS-SRTP.
func (s *Session) DTLSSetup() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dtls == nil {
		return ""
	}
	return s.dtls.setup
}

// WaitDTLS waits until the session's DTLS-SRTP handshake has ended and
// returns its error. It fails at once on a session without DTLS-SRTP.
func (s *Session) WaitDTLS(ctx context.Context) error {
	d := s.dtlsNow()
	if d == nil {
		return errors.New("sim: the session does not use DTLS-SRTP")
	}
	select {
	case <-d.ready:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitKeys holds a sender on a DTLS-SRTP session until it has keys.
func (s *Session) waitKeys(ctx context.Context) error {
	d := s.dtlsNow()
	if d == nil {
		return nil
	}
	select {
	case <-d.ready:
		if d.err != nil {
			return fmt.Errorf("sim: no SRTP keys: %w", d.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runDTLS performs the handshake, installs the keys, and then keeps the
// association alive (the other side may resend its last flight) until the
// session's media closes.
func (s *Session) runDTLS(d *dtlsState) {
	defer s.wg.Done()
	conn, err := s.handshake(d)
	if err != nil {
		s.p.log.Debug("DTLS-SRTP handshake failed", "call", s.callID, "setup", d.setup, "error", err)
		d.finish(err)
		return
	}
	s.p.log.Debug("DTLS-SRTP keys agreed", "call", s.callID, "setup", d.setup)
	d.finish(nil)
	buf := make([]byte, 1500)
	for {
		if _, err := conn.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
	}
}

func (s *Session) handshake(d *dtlsState) (*dtls.Conn, error) {
	var profiles []dtls.SRTPProtectionProfile
	for _, su := range d.suites {
		for _, p := range dtlsProfiles {
			if p.suite == su {
				profiles = append(profiles, p.profile)
			}
		}
	}
	if len(profiles) == 0 {
		return nil, fmt.Errorf("sim: no DTLS-SRTP profile for suites %v", d.suites)
	}
	opts := []dtls.Option{
		dtls.WithCertificates(s.p.cert.cert),
		dtls.WithSRTPProtectionProfiles(profiles...),
		dtls.WithInsecureSkipVerify(true), // no CA: verify checks the SDP fingerprint
		dtls.WithVerifyPeerCertificate(d.verify),
		dtls.WithFlightInterval(250 * time.Millisecond),
		dtls.WithLoggerFactory(&logging.DefaultLoggerFactory{Writer: stdio.Discard, DefaultLogLevel: logging.LogLevelDisabled}),
	}
	to := net.UDPAddrFromAddrPort(s.RemoteMedia())
	var conn *dtls.Conn
	var err error
	if d.client() {
		copts := make([]dtls.ClientOption, len(opts))
		for i, o := range opts {
			copts[i] = o
		}
		conn, err = dtls.ClientWithOptions(s.dpc, to, copts...)
	} else {
		sopts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert)}
		for _, o := range opts {
			sopts = append(sopts, o)
		}
		conn, err = dtls.ServerWithOptions(s.dpc, to, sopts...)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		conn.Close()
		return nil, errors.New("sim: media closed")
	}
	s.dtlsConn = conn
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.mediaCtx, dtlsHandshakeTimeout)
	err = conn.HandshakeContext(ctx)
	cancel()
	if err != nil {
		conn.Close()
		return nil, err
	}
	send, recv, err := dtlsKeys(conn, d)
	if err != nil {
		conn.Close()
		return nil, err
	}
	s.mu.Lock()
	s.send, s.recv = send, recv
	s.mu.Unlock()
	return conn, nil
}

// dtlsKeys exports the SRTP master keys (RFC 5764 section 4.2).
func dtlsKeys(conn *dtls.Conn, d *dtlsState) (send, recv *sdesLine, err error) {
	p, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, nil, errors.New("sim: no SRTP protection profile negotiated")
	}
	suite := ""
	for _, q := range dtlsProfiles {
		if q.profile == p {
			suite = q.suite
		}
	}
	if suite == "" {
		return nil, nil, fmt.Errorf("sim: unknown SRTP protection profile %#04x", uint16(p))
	}
	sp, err := srtpProfile(suite)
	if err != nil {
		return nil, nil, err
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, nil, errors.New("sim: no DTLS connection state")
	}
	sc := srtp.Config{Profile: sp}
	if err := sc.ExtractSessionKeysFromDTLS(&state, d.client()); err != nil {
		return nil, nil, err
	}
	k := sc.Keys
	send = &sdesLine{suite: suite, key: append(bytes.Clone(k.LocalMasterKey), k.LocalMasterSalt...)}
	recv = &sdesLine{suite: suite, key: append(bytes.Clone(k.RemoteMasterKey), k.RemoteMasterSalt...)}
	return send, recv, nil
}

// closeDTLS ends the session's association: the handshake if it runs, and
// pion's connection (which tells the other side with close_notify while
// the socket is still open). Called from closeMedia.
func (s *Session) closeDTLS() {
	s.mediaCancel()
	s.mu.Lock()
	conn, d := s.dtlsConn, s.dtls
	s.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	s.dpc.Close()
	if d != nil {
		d.finish(errors.New("sim: media closed before the DTLS-SRTP handshake ended"))
	}
}

// dtlsPacketConn is the net.PacketConn pion/dtls runs on: reads are the
// DTLS records the session's reader hands over, writes go out of the
// session's media socket to the other side's media address.
type dtlsPacketConn struct {
	s      *Session
	in     chan []byte
	dl     *deadline.Deadline
	closed chan struct{}
	once   sync.Once
}

func newDTLSPacketConn(s *Session) *dtlsPacketConn {
	return &dtlsPacketConn{s: s, in: make(chan []byte, 64), dl: deadline.New(), closed: make(chan struct{})}
}

// isDTLS tells a DTLS record from RTP/RTCP by its first byte (RFC 7983).
func isDTLS(pkt []byte) bool { return len(pkt) > 0 && pkt[0] >= 20 && pkt[0] <= 63 }

// deliver queues a DTLS record; it is dropped when nobody keeps up (the
// sender retransmits).
func (c *dtlsPacketConn) deliver(pkt []byte) {
	select {
	case <-c.closed:
		return
	default:
	}
	select {
	case c.in <- bytes.Clone(pkt):
	default:
	}
}

func (c *dtlsPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.dl.Done():
		return 0, nil, timeoutError{}
	default:
	}
	select {
	case pkt := <-c.in:
		return copy(b, pkt), net.UDPAddrFromAddrPort(c.s.RemoteMedia()), nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	case <-c.dl.Done():
		return 0, nil, timeoutError{}
	}
}

func (c *dtlsPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-c.closed:
		return 0, net.ErrClosed
	default:
	}
	return c.s.conn.WriteToUDPAddrPort(b, c.s.RemoteMedia())
}

func (c *dtlsPacketConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *dtlsPacketConn) LocalAddr() net.Addr                { return c.s.conn.LocalAddr() }
func (c *dtlsPacketConn) SetDeadline(t time.Time) error      { c.dl.Set(t); return nil }
func (c *dtlsPacketConn) SetReadDeadline(t time.Time) error  { c.dl.Set(t); return nil }
func (c *dtlsPacketConn) SetWriteDeadline(_ time.Time) error { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
