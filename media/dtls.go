package media

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/logging"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/deadline"
)

// DTLS-SRTP (RFC 5763, RFC 5764): the keys of a stream are agreed by a
// DTLS 1.2 handshake on the stream's own UDP ports, and each side's
// certificate is authenticated by the fingerprint it wrote in its SDP.
// The handshake packets share the ports with SRTP; the relay tells them
// apart by their first byte (RFC 7983) and hands them to the stream's
// association, which runs pion/dtls over them. Until an association has
// produced keys, no media is relayed to or from that side.

// dtlsHandshakeTimeout bounds a handshake, retransmissions included.
const dtlsHandshakeTimeout = 20 * time.Second

// dtlsFlightInterval is the first retransmission interval. Peers often
// drop the first flight because it arrives before they have processed the
// SDP that announced it; resending well before a second keeps media from
// starting late.
const dtlsFlightInterval = 250 * time.Millisecond

// DTLSCertificate is parapet's certificate for DTLS-SRTP. One self-signed
// ECDSA P-256 certificate serves every call: peers authenticate it by the
// fingerprint parapet writes in its SDP, not through a CA.
type DTLSCertificate struct {
	cert tls.Certificate
	fp   Fingerprint
}

// NewDTLSCertificate generates a certificate valid for 30 days.
func NewDTLSCertificate() (*DTLSCertificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "parapet DTLS-SRTP"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &DTLSCertificate{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		fp:   Fingerprint{Hash: "sha-256", Value: sum[:]},
	}, nil
}

// Fingerprint is the certificate's SHA-256 fingerprint, for a=fingerprint.
func (c *DTLSCertificate) Fingerprint() Fingerprint { return c.fp }

// DTLSParams is how one side of a stream agrees its keys with DTLS-SRTP.
type DTLSParams struct {
	// Client is true when parapet starts the handshake (its a=setup is
	// active); false when it waits for the peer's (passive).
	Client bool
	// Fingerprints are the peer's, from its SDP. The handshake fails unless
	// the peer's certificate matches one of them by a hash parapet supports.
	Fingerprints []Fingerprint
	// Suites are the SRTP suites parapet accepts, in order of preference
	// (SDES names, such as AEAD_AES_256_GCM); NULL suites are never used.
	Suites []string
}

func (p *DTLSParams) equal(o *DTLSParams) bool {
	return p.Client == o.Client && slices.Equal(p.Suites, o.Suites) &&
		slices.EqualFunc(p.Fingerprints, o.Fingerprints, func(a, b Fingerprint) bool {
			return a.Hash == b.Hash && bytes.Equal(a.Value, b.Value)
		})
}

func (p *DTLSParams) clone() *DTLSParams {
	c := &DTLSParams{Client: p.Client, Suites: slices.Clone(p.Suites)}
	for _, f := range p.Fingerprints {
		c.Fingerprints = append(c.Fingerprints, Fingerprint{Hash: f.Hash, Value: bytes.Clone(f.Value)})
	}
	return c
}

// Keying is what a side's key agreement came to, for records.
type Keying struct {
	// Suite is the SRTP suite the handshake selected ("" until it is done).
	Suite string
	// Done is true once keys are in use.
	Done bool
	// Err describes a failed handshake.
	Err string
	// Client is true when parapet was the DTLS client (a=setup:active).
	Client bool
	// PeerCert is the SHA-256 fingerprint of the certificate the peer
	// presented (set once it has presented one, even if it did not match
	// its SDP).
	PeerCert Fingerprint
}

// dtlsCipherSuites are the DTLS 1.2 cipher suites parapet accepts: ECDHE
// with an AEAD cipher only (NIST SP 800-52r2's preference; no CBC, no
// static RSA, no PSK).
var dtlsCipherSuites = []dtls.CipherSuiteID{
	dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// isDTLS tells a DTLS record from RTP/RTCP by its first byte (RFC 7983).
func isDTLS(pkt []byte) bool { return len(pkt) > 0 && pkt[0] >= 20 && pkt[0] <= 63 }

// opensHandshake reports whether a DTLS datagram starts with the first
// message a peer sends in a handshake with parapet in that role: a
// ClientHello when parapet is the server; a HelloVerifyRequest or
// ServerHello when it is the client (RFC 6347 section 4.2: a handshake
// record, content type 22, of epoch 0, whose message type is at byte 13).
func opensHandshake(pkt []byte, client bool) bool {
	if len(pkt) < 14 || pkt[0] != 22 || pkt[3] != 0 || pkt[4] != 0 {
		return false
	}
	if client {
		return pkt[13] == 2 || pkt[13] == 3
	}
	return pkt[13] == 1
}

// fingerprintOf hashes a DER certificate with the named hash; ok is false
// for a hash parapet does not accept.
func fingerprintOf(hashName string, der []byte) ([]byte, bool) {
	var h hash.Hash
	switch hashName {
	case "sha-256":
		h = sha256.New()
	case "sha-384":
		h = sha512.New384()
	case "sha-512":
		h = sha512.New()
	case "sha-1":
		h = sha1.New()
	default:
		return nil, false
	}
	h.Write(der)
	return h.Sum(nil), true
}

// ErrFingerprint is the handshake error when the peer's certificate does
// not match the fingerprint in its SDP.
var ErrFingerprint = errors.New("peer certificate does not match the a=fingerprint of its SDP")

// dtlsAssoc is one DTLS association: a side's RTP port, or its RTCP port
// when RTCP is not multiplexed. It is the net.PacketConn pion/dtls runs
// over: reads come from the relay's reader (deliver), writes go straight
// to the relay's socket.
type dtlsAssoc struct {
	st     *RelayStream
	e      *endpoint
	rtcp   bool
	sock   *net.UDPConn
	params *DTLSParams
	cert   *DTLSCertificate

	in       chan []byte
	readDL   *deadline.Deadline
	closed   chan struct{}
	closeOne sync.Once
	cancel   context.CancelFunc
	stopped  atomic.Bool // by parapet (replaced, or the relay closing), not by pion
	// presented is the fingerprint of the certificate the peer presented.
	presented atomic.Pointer[Fingerprint]

	// dest is where handshake packets go: the address in the peer's SDP
	// until a DTLS packet arrives, then that packet's source (the only
	// one accepted from then on).
	dest    atomic.Pointer[netip.AddrPort]
	latched atomic.Bool
}

func (st *RelayStream) newAssoc(e *endpoint, rtcpPort bool, to netip.AddrPort, p *DTLSParams) *dtlsAssoc {
	sock := e.rtp
	if rtcpPort {
		sock = e.rtcp
	}
	a := &dtlsAssoc{st: st, e: e, rtcp: rtcpPort, sock: sock, params: p, cert: st.r.cfg.DTLS,
		in: make(chan []byte, 16), readDL: deadline.New(), closed: make(chan struct{})}
	a.dest.Store(&to)
	return a
}

// deliver hands the association a DTLS packet from src; false (the packet
// dropped) when the association has latched onto another source, or has
// not latched yet and the packet does not open a handshake with it. It
// copies the packet (handshakes are rare; media never comes this way).
func (a *dtlsAssoc) deliver(pkt []byte, src netip.AddrPort) bool {
	if a.latched.Load() {
		if d := a.dest.Load(); d == nil || *d != src {
			return false
		}
	} else if !opensHandshake(pkt, a.params.Client) {
		// A late record of the side's previous association (its peer's
		// close_notify, say, when a transfer replaced that peer) must not
		// latch the new association onto the previous peer.
		return false
	} else if a.latched.CompareAndSwap(false, true) {
		s := src
		a.dest.Store(&s)
	}
	select {
	case a.in <- bytes.Clone(pkt):
	case <-a.closed:
	default: // the association is not keeping up: a retransmission will come
	}
	return true
}

func (a *dtlsAssoc) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pkt := <-a.in:
		d := a.dest.Load()
		return copy(p, pkt), net.UDPAddrFromAddrPort(*d), nil
	case <-a.closed:
		return 0, nil, net.ErrClosed
	case <-a.readDL.Done():
		return 0, nil, timeoutError{}
	}
}

func (a *dtlsAssoc) WriteTo(p []byte, _ net.Addr) (int, error) {
	select {
	case <-a.closed:
		return 0, net.ErrClosed
	default:
	}
	d := a.dest.Load()
	if d == nil || !d.IsValid() || d.Port() == 0 {
		return len(p), nil // no address yet: as if lost
	}
	return a.sock.WriteToUDPAddrPort(p, *d)
}

// Close is pion's: it ends reads and writes.
func (a *dtlsAssoc) Close() error {
	a.closeOne.Do(func() { close(a.closed) })
	return nil
}

// stop ends the association for parapet: the handshake, if running, and
// pion's connection (through its reads failing).
func (a *dtlsAssoc) stop() {
	a.stopped.Store(true)
	if a.cancel != nil {
		a.cancel()
	}
	a.Close()
}

func (a *dtlsAssoc) LocalAddr() net.Addr                { return a.sock.LocalAddr() }
func (a *dtlsAssoc) SetDeadline(t time.Time) error      { a.readDL.Set(t); return nil }
func (a *dtlsAssoc) SetReadDeadline(t time.Time) error  { a.readDL.Set(t); return nil }
func (a *dtlsAssoc) SetWriteDeadline(_ time.Time) error { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// verify checks the peer's certificate against the fingerprints of its SDP
// (RFC 8122 section 5); CA validation does not apply.
func (a *dtlsAssoc) verify(raw [][]byte, _ [][]*x509.Certificate) error {
	if len(raw) == 0 {
		return errors.New("peer sent no certificate")
	}
	sum := sha256.Sum256(raw[0])
	a.presented.Store(&Fingerprint{Hash: "sha-256", Value: sum[:]})
	for _, f := range a.params.Fingerprints {
		if sum, ok := fingerprintOf(f.Hash, raw[0]); ok && bytes.Equal(sum, f.Value) {
			return nil
		}
	}
	return ErrFingerprint
}

// run performs the handshake, installs the keys, and then keeps the
// association alive (the peer may resend its last flight) until closed.
func (a *dtlsAssoc) run(ctx context.Context) {
	r := a.st.r
	defer r.wg.Done()
	var profiles []dtls.SRTPProtectionProfile
	for _, s := range a.params.Suites {
		if su, ok := suiteNamed(s); ok {
			profiles = append(profiles, su.dtls)
		}
	}
	fail := func(err error) {
		if a.stopped.Load() {
			return
		}
		r.log.Warn("DTLS-SRTP handshake failed", "side", a.e.side.String(), "rtcp", a.rtcp, "error", err)
		if a.rtcp {
			return // RTP keeps its keys; RTCP from this peer stays dropped
		}
		a.e.keying.Store(a.keying(Keying{Err: err.Error()}))
		if r.cfg.OnKeyingFailed != nil && !a.stopped.Load() { // replaced or closing: not the call's failure
			r.cfg.OnKeyingFailed(a.e.side, err)
		}
	}
	if len(profiles) == 0 {
		fail(errors.New("no SRTP suite usable with DTLS-SRTP"))
		return
	}
	opts := []dtls.Option{
		dtls.WithCertificates(a.cert.cert),
		dtls.WithCipherSuites(dtlsCipherSuites...),
		dtls.WithSRTPProtectionProfiles(profiles...),
		dtls.WithExtendedMasterSecret(dtls.RequireExtendedMasterSecret),
		dtls.WithInsecureSkipVerify(true), // no CA: verify checks the SDP fingerprint instead
		dtls.WithVerifyPeerCertificate(a.verify),
		dtls.WithFlightInterval(dtlsFlightInterval),
		dtls.WithLoggerFactory(&logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}),
	}
	conn, err := dtlsConn(a, net.UDPAddrFromAddrPort(*a.dest.Load()), a.params.Client, opts)
	if err != nil {
		fail(err)
		return
	}
	defer conn.Close()
	hctx, cancel := context.WithTimeout(ctx, dtlsHandshakeTimeout)
	err = conn.HandshakeContext(hctx)
	cancel()
	if err != nil {
		fail(err)
		return
	}
	in, out, suite, err := a.keys(conn)
	if err != nil {
		fail(err)
		return
	}
	if err := a.st.keyed(a, in, out); err != nil {
		fail(err)
		return
	}
	if !a.rtcp {
		a.e.keying.Store(a.keying(Keying{Suite: suite, Done: true}))
		if r.cfg.OnKeyed != nil && !a.stopped.Load() {
			r.cfg.OnKeyed(a.e.side)
		}
	}
	// Keep reading: pion answers a resent final flight from here, and
	// returns when the association is closed.
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

// dtlsConn starts a DTLS client or server over pc toward to; a server
// requires the client's certificate (checked against its fingerprint).
func dtlsConn(pc net.PacketConn, to net.Addr, client bool, opts []dtls.Option) (*dtls.Conn, error) {
	if client {
		copts := make([]dtls.ClientOption, len(opts))
		for i, o := range opts {
			copts[i] = o
		}
		return dtls.ClientWithOptions(pc, to, copts...)
	}
	sopts := []dtls.ServerOption{dtls.WithClientAuth(dtls.RequireAnyClientCert)}
	for _, o := range opts {
		sopts = append(sopts, o)
	}
	return dtls.ServerWithOptions(pc, to, sopts...)
}

// keying completes k with the association's role and the peer's
// certificate.
func (a *dtlsAssoc) keying(k Keying) *Keying {
	k.Client = a.params.Client
	if p := a.presented.Load(); p != nil {
		k.PeerCert = *p
	}
	return &k
}

// keys exports the SRTP master keys (RFC 5764 section 4.2): in is what the
// peer encrypts with, out what parapet encrypts with.
func (a *dtlsAssoc) keys(conn *dtls.Conn) (in, out *Crypto, suite string, err error) {
	p, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return nil, nil, "", errors.New("the peer negotiated no SRTP protection profile (use_srtp)")
	}
	suite, ok = suiteOfProfile(p)
	if !ok || !slices.Contains(a.params.Suites, suite) {
		return nil, nil, "", fmt.Errorf("the peer selected SRTP protection profile %#04x, which parapet did not offer", uint16(p))
	}
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, nil, "", errors.New("no DTLS connection state")
	}
	profile, err := Profile(suite)
	if err != nil {
		return nil, nil, "", err
	}
	sc := srtp.Config{Profile: profile}
	if err := sc.ExtractSessionKeysFromDTLS(&state, a.params.Client); err != nil {
		return nil, nil, "", err
	}
	k := sc.Keys
	in = &Crypto{Suite: suite, Key: append(bytes.Clone(k.RemoteMasterKey), k.RemoteMasterSalt...)}
	out = &Crypto{Suite: suite, Key: append(bytes.Clone(k.LocalMasterKey), k.LocalMasterSalt...)}
	return in, out, suite, nil
}

// keyed installs the keys an association agreed, if it is still the
// side's current one.
func (st *RelayStream) keyed(a *dtlsAssoc, in, out *Crypto) error {
	st.cfgMu.Lock()
	defer st.cfgMu.Unlock()
	e := a.e
	cur := e.cfg.Load()
	if as := e.assocs.Load(); cur == nil || cur.dtls == nil || as == nil || as[assocIndex(a.rtcp)] != a {
		return nil // replaced meanwhile
	}
	n := *cur
	dec1, err := newDecryptor(in)
	if err != nil {
		return err
	}
	enc1, err := newEncryptor(out)
	if err != nil {
		return err
	}
	if a.rtcp {
		n.decRTCP, n.encRTCP, n.waitRTCP = dec1, enc1, false
	} else {
		n.decRTP, n.encRTP, n.waitRTP = dec1, enc1, false
		if n.mux {
			// RTCP shares the association; each context has one user.
			if n.decRTCP, err = newDecryptor(in); err != nil {
				return err
			}
			if n.encRTCP, err = newEncryptor(out); err != nil {
				return err
			}
			n.waitRTCP = false
		}
	}
	e.cfg.Store(&n)
	return nil
}

func assocIndex(rtcp bool) int {
	if rtcp {
		return 1
	}
	return 0
}

// startDTLS replaces side e's associations with new ones for p and starts
// them. Caller holds st.cfgMu.
func (st *RelayStream) startDTLS(e *endpoint, pc PeerConfig) error {
	r := st.r
	if r.cfg.DTLS == nil {
		return errors.New("DTLS-SRTP requested but the relay has no DTLS certificate")
	}
	st.stopDTLS(e)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("relay closed")
	}
	as := &[2]*dtlsAssoc{st.newAssoc(e, false, pc.RTP, pc.DTLS)}
	if !pc.Mux {
		as[1] = st.newAssoc(e, true, pc.RTCP, pc.DTLS)
	}
	e.keying.Store(&Keying{})
	e.earlyMu.Lock()
	e.assocs.Store(as)
	for _, rec := range e.early {
		if a := as[assocIndex(rec.rtcp)]; a != nil {
			a.deliver(rec.pkt, rec.src)
		}
	}
	e.early = nil
	e.earlyMu.Unlock()
	for _, a := range as {
		if a == nil {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		a.cancel = cancel
		r.wg.Add(1)
		go a.run(ctx)
	}
	return nil
}

// stopDTLS closes side e's associations. Caller holds st.cfgMu.
func (st *RelayStream) stopDTLS(e *endpoint) {
	if as := e.assocs.Swap(nil); as != nil {
		for _, a := range as {
			if a != nil {
				a.stop()
			}
		}
	}
}

// maxEarlyDTLS bounds the DTLS records kept for an association that does
// not exist yet.
const maxEarlyDTLS = 4

// earlyRecord is a DTLS record that arrived before its association.
type earlyRecord struct {
	pkt  []byte
	src  netip.AddrPort
	rtcp bool
}

// dtlsPacket routes a DTLS record from side e's peer to its association,
// and counts it in the side's DTLS counter whatever becomes of it (except
// one from a source other than the association's peer: wrong_source).
// A peer that answers parapet's offer as the DTLS client sends its
// ClientHello as soon as it has sent its answer, often before parapet has
// read that answer: the first few such records are kept and handed to the
// association when it starts, instead of waiting for a retransmission. A
// side keyed otherwise (SDES, plain RTP), or a port without an association
// (the RTCP port under rtcp-mux), drops them unread.
func (st *RelayStream) dtlsPacket(e *endpoint, pkt []byte, src netip.AddrPort, rtcpSocket bool) {
	c := &st.r.counters[e.side]
	if !st.routeDTLS(e, pkt, src, rtcpSocket) {
		c.wrongSource.Add(1)
		return
	}
	c.dtls.Add(1)
}

// routeDTLS delivers, keeps or drops a DTLS record; false when the side's
// association has latched onto another source.
func (st *RelayStream) routeDTLS(e *endpoint, pkt []byte, src netip.AddrPort, rtcpSocket bool) bool {
	if as := e.assocs.Load(); as != nil {
		if a := as[assocIndex(rtcpSocket)]; a != nil {
			return a.deliver(pkt, src)
		}
		return true // no association on this port (rtcp-mux): dropped
	}
	e.earlyMu.Lock()
	defer e.earlyMu.Unlock()
	if as := e.assocs.Load(); as != nil { // started meanwhile
		if a := as[assocIndex(rtcpSocket)]; a != nil {
			return a.deliver(pkt, src)
		}
		return true
	}
	if pc := e.cfg.Load(); (pc == nil || pc.dtls != nil) && len(e.early) < maxEarlyDTLS {
		// Not negotiated yet, or DTLS-SRTP whose association is starting.
		e.early = append(e.early, earlyRecord{pkt: bytes.Clone(pkt), src: src, rtcp: rtcpSocket})
	}
	return true
}

// Keying reports side s's DTLS-SRTP key agreement on this stream; ok is
// false when the side does not use DTLS-SRTP.
func (st *RelayStream) Keying(s Side) (k Keying, ok bool) {
	if p := st.sides[s].keying.Load(); p != nil {
		return *p, true
	}
	return Keying{}, false
}
