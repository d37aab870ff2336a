package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// Side names one leg of a relay.
type Side int

const (
	// SideA faces the peer that called parapet.
	SideA Side = 0
	// SideB faces the peer parapet called.
	SideB Side = 1
)

// Other is the opposite side.
func (s Side) Other() Side { return 1 - s }

func (s Side) String() string {
	if s == SideA {
		return "a"
	}
	return "b"
}

// Counters are one side's packet counters. "In" is what the side's peer sent
// to parapet, "out" what parapet sent to that peer. Only packets that passed
// validation (and, on SRTP sides, authentication) count as in. A packet
// dropped for what it is counts in exactly one of the other counters; a
// valid one that could not be sent on counts in and in BeforeAnswer (the
// other side not negotiated yet) or Replays (a plain packet's repeated
// sequence number toward an SRTP side).
type Counters struct {
	PacketsIn  uint64
	PacketsOut uint64
	BytesIn    uint64
	BytesOut   uint64
	// AuthFailures counts SRTP/SRTCP packets whose authentication tag did
	// not verify: the only counter that can mean forged media (or a peer
	// encrypting with a key other than the one it announced).
	AuthFailures uint64
	Replays      uint64 // SRTP/SRTCP packets refused by the replay window
	WrongSource  uint64 // packets from an address other than the latched peer
	// Malformed counts what is not usable: not RTP/RTCP (RFC 7983's first
	// byte says neither media, STUN nor DTLS; ZRTP and TURN channel data
	// included, as parapet speaks neither), truncated, bad padding or RTCP
	// lengths, RTCP on a port that does not carry it (the RTCP port of a
	// side with rtcp-mux), RTP on the RTCP port.
	Malformed uint64
	// BeforeAnswer counts packets from this side's peer dropped because a
	// side's media was not negotiated yet: peers often start sending the
	// moment they answer, before parapet has the keys.
	BeforeAnswer uint64
	// Unprotected counts plain RTP/RTCP on a side that runs SRTP: an RTCP
	// compound packet whose length fields walk exactly to its end (SRTCP
	// has its index word and tag after the last part), or an RTP packet
	// too short to carry the SRTP tag. Dropped, never relayed. Plain RTP
	// long enough for a tag cannot be told from forged SRTP and is counted
	// in AuthFailures.
	Unprotected uint64
	// STUN counts STUN messages (first byte 0-3 and RFC 5389's magic
	// cookie, RFC 7983): dropped unanswered, as parapet does no ICE.
	STUN uint64
	// DTLS counts DTLS records (first byte 20-63, RFC 7983) from the peer:
	// on a DTLS-SRTP side its key agreement, handed to the side's
	// association; on any other side dropped unread. Never media.
	DTLS uint64
}

// counters are written by two goroutines: the side's own readers (in,
// drops) and the other side's readers (out). Padding keeps them, and the two
// sides, on separate cache lines.
type counters struct {
	packetsIn, bytesIn                            atomic.Uint64
	authFailures, replays, wrongSource, malformed atomic.Uint64
	beforeAnswer, unprotected, stun, dtls         atomic.Uint64
	_                                             [64]byte
	packetsOut, bytesOut                          atomic.Uint64
	_                                             [64]byte
}

func (c *counters) snapshot() Counters {
	return Counters{
		PacketsIn: c.packetsIn.Load(), PacketsOut: c.packetsOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		AuthFailures: c.authFailures.Load(), Replays: c.replays.Load(),
		WrongSource: c.wrongSource.Load(), Malformed: c.malformed.Load(),
		BeforeAnswer: c.beforeAnswer.Load(), Unprotected: c.unprotected.Load(),
		STUN: c.stun.Load(), DTLS: c.dtls.Load(),
	}
}

// Add sums two sets of counters.
func (c Counters) Add(o Counters) Counters {
	return Counters{
		PacketsIn: c.PacketsIn + o.PacketsIn, PacketsOut: c.PacketsOut + o.PacketsOut,
		BytesIn: c.BytesIn + o.BytesIn, BytesOut: c.BytesOut + o.BytesOut,
		AuthFailures: c.AuthFailures + o.AuthFailures, Replays: c.Replays + o.Replays,
		WrongSource: c.WrongSource + o.WrongSource, Malformed: c.Malformed + o.Malformed,
		BeforeAnswer: c.BeforeAnswer + o.BeforeAnswer, Unprotected: c.Unprotected + o.Unprotected,
		STUN: c.STUN + o.STUN, DTLS: c.DTLS + o.DTLS,
	}
}

// Replay windows (RFC 3711 section 3.3.2 asks for at least 64). 128 leaves
// room for reordering on a WAN path.
const replayWindow = 128

const (
	maxSRTPIndex  = 1<<48 - 1
	maxSRTCPIndex = 0x7FFFFFFF
)

// RelayConfig configures a relay.
type RelayConfig struct {
	// Timeout ends the call (OnIdle) when no valid packet arrived on any
	// stream for this long. Zero disables the watchdog.
	Timeout time.Duration
	// HoldTimeout replaces Timeout while the call is on hold (SetHold):
	// a held call may carry no media at all for a long time.
	HoldTimeout time.Duration
	// OnIdle is called once, from the watchdog goroutine, on timeout, with
	// the limit that ran out and whether the call was on hold (HoldTimeout).
	OnIdle func(limit time.Duration, onHold bool)
	// DTLS is parapet's certificate for streams keyed with DTLS-SRTP.
	DTLS *DTLSCertificate
	// OnKeyingFailed is called when a side's DTLS-SRTP handshake fails (its
	// media can then never flow).
	OnKeyingFailed func(s Side, err error)
	// OnKeyed is called when a side's DTLS-SRTP handshake has agreed the
	// keys of a stream's RTP (Keying then reports them).
	OnKeyed func(s Side)
	Logger  *slog.Logger
}

// Relay carries one call's media between side A and side B. Every packet is
// validated, authenticated and decrypted with the sending side's keys (when
// that side runs SRTP) and re-encrypted with the other side's keys (when
// that side runs SRTP). Nothing is passed through unexamined.
//
// Configure may be called at any time (a re-INVITE); packet handling reads
// the configuration through an atomic pointer and never takes a lock.
type Relay struct {
	pool *PortPool
	cfg  RelayConfig
	log  *slog.Logger

	mu       sync.Mutex
	streams  []*RelayStream
	started  bool
	watching bool
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup

	counters [2]counters
	// active is set by any valid packet and cleared by the watchdog at each
	// tick: cheaper than reading the clock per packet.
	active atomic.Bool
	idle   atomic.Bool
	hold   atomic.Bool
}

// SetHold says whether the call is on hold (no stream both sends and
// receives), so the watchdog uses HoldTimeout rather than Timeout.
func (r *Relay) SetHold(h bool) { r.hold.Store(h) }

// NewRelay creates an empty relay drawing ports from pool.
func NewRelay(pool *PortPool, cfg RelayConfig) *Relay {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Relay{pool: pool, cfg: cfg, log: log, done: make(chan struct{})}
}

// RelayStream is one relayed m= line: a socket pair facing each side.
type RelayStream struct {
	r     *Relay
	sides [2]*endpoint
	// cfgMu orders the writers of the sides' configurations (Configure,
	// and DTLS associations installing their keys); readers never lock.
	cfgMu sync.Mutex
}

type endpoint struct {
	side      Side
	rtp, rtcp *net.UDPConn
	port      int

	cfg atomic.Pointer[peerConfig]
	// The peer's real source addresses, learnt from its first valid packet
	// (symmetric RTP, RFC 4961). Reset when Configure changes the peer.
	latchRTP, latchRTCP atomic.Pointer[netip.AddrPort]

	// DTLS-SRTP: the associations on the RTP and (without rtcp-mux) RTCP
	// ports, and how the key agreement went.
	assocs atomic.Pointer[[2]*dtlsAssoc]
	keying atomic.Pointer[Keying]
	// early holds DTLS records that came before any association.
	earlyMu sync.Mutex
	early   []earlyRecord

	// rtcpMu is held while a packet from this side's peer uses RTCP
	// crypto: this side's decRTCP and the other side's encRTCP. See "One
	// owner per crypto context" at handleRTCP.
	rtcpMu sync.Mutex
}

// PeerConfig is what parapet knows of one side's peer for one stream.
type PeerConfig struct {
	// RTP and RTCP are where the peer said it receives (from its SDP).
	RTP, RTCP netip.AddrPort
	// Mux is true when RTCP shares the RTP port on this side (RFC 5761).
	Mux bool
	// In holds the key the peer encrypts with (its a=crypto); nil for plain RTP.
	In *Crypto
	// Out holds the key parapet encrypts with toward the peer (parapet's
	// a=crypto on this side); nil for plain RTP.
	Out *Crypto
	// DTLS, instead of In and Out, has the keys agreed by a DTLS-SRTP
	// handshake on the stream's ports; no media flows on this side until
	// it completes.
	DTLS *DTLSParams
	// Sources are the addresses a plain-RTP peer may send from: its
	// packets latch the side only from one of them (any port, for NAT).
	// Without it, the first packet from anywhere would take the stream
	// over ("RTP bleed"). SRTP sides latch on the first authenticated
	// packet and ignore it. Empty: any address.
	Sources []netip.Addr
	// NewPeer says another peer takes the side over (a transfer): the
	// addresses the side was latched onto are the previous peer's, which
	// sends until it has its BYE. Its packets must neither latch the side
	// (a plain-RTP peer on the same address would keep it) nor be judged
	// by the new peer's keys: they are dropped as wrong_source.
	NewPeer bool
}

type peerConfig struct {
	rtp, rtcp netip.AddrPort
	mux       bool
	sources   []netip.Addr
	inKey     []byte
	outKey    []byte
	decRTP    *decryptor
	decRTCP   *decryptor
	encRTP    *srtp.Context
	encRTCP   *srtp.Context
	// dtls is set on a DTLS-SRTP side; waitRTP and waitRTCP hold its media
	// until the association has produced the keys.
	dtls              *DTLSParams
	waitRTP, waitRTCP bool
	// gone are the sources of the peer a transfer replaced (NewPeer).
	gone []netip.AddrPort
}

// decryptor is a decrypt context with replay protection, used by exactly one
// goroutine at a time. replayed is set by its replay detector when the last
// packet was refused as a replay, so the caller can count it apart from a
// forgery. rtpOverhead is what SRTP adds after the RTP header (the tags):
// an RTP packet shorter than its header plus that cannot be SRTP.
type decryptor struct {
	ctx         *srtp.Context
	replayed    bool
	rtpOverhead int
}

// countingDetector wraps pion's sliding window and flags refusals.
type countingDetector struct {
	inner replaydetector.ReplayDetector
	ca    replaydetector.CheckAccepter
	d     *decryptor
}

func (c *countingDetector) Check(seq uint64) (func() bool, bool) {
	accept, ok := c.inner.Check(seq)
	if !ok {
		c.d.replayed = true
	}
	return accept, ok
}

func (c *countingDetector) CheckSeq(seq uint64) replaydetector.Token {
	t := c.ca.CheckSeq(seq)
	if !t.Passed() {
		c.d.replayed = true
	}
	return t
}

func (c *countingDetector) Accept(t replaydetector.Token) bool { return c.ca.Accept(t) }

func newDetector(d *decryptor, max uint64) replaydetector.ReplayDetector {
	inner := replaydetector.New(replayWindow, max)
	ca, _ := inner.(replaydetector.CheckAccepter)
	return &countingDetector{inner: inner, ca: ca, d: d}
}

// contextKeys is what an SRTP context needs of c: its suite's protection
// profile, the master key and the master salt.
func contextKeys(c *Crypto) (profile srtp.ProtectionProfile, key, salt []byte, err error) {
	if profile, err = Profile(c.Suite); err != nil {
		return 0, nil, nil, err
	}
	key, salt, err = c.SplitKey()
	return profile, key, salt, err
}

func newDecryptor(c *Crypto) (*decryptor, error) {
	profile, key, salt, err := contextKeys(c)
	if err != nil {
		return nil, err
	}
	tag, err := profile.AuthTagRTPLen()
	if err != nil {
		return nil, err
	}
	aead, err := profile.AEADAuthTagLen()
	if err != nil {
		return nil, err
	}
	d := &decryptor{rtpOverhead: tag + aead}
	d.ctx, err = srtp.CreateContext(key, salt, profile,
		srtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector { return newDetector(d, maxSRTPIndex) }),
		srtp.SRTCPReplayDetectorFactory(func() replaydetector.ReplayDetector { return newDetector(d, maxSRTCPIndex) }),
	)
	if err != nil {
		return nil, fmt.Errorf("srtp decrypt context: %w", err)
	}
	return d, nil
}

func newEncryptor(c *Crypto) (*srtp.Context, error) {
	profile, key, salt, err := contextKeys(c)
	if err != nil {
		return nil, err
	}
	ctx, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		return nil, fmt.Errorf("srtp encrypt context: %w", err)
	}
	return ctx, nil
}

// AddStream allocates a socket pair on each side for a new stream.
func (r *Relay) AddStream() (*RelayStream, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("relay closed")
	}
	st := &RelayStream{r: r}
	for i := range st.sides {
		rtpc, rtcpc, err := r.pool.pair()
		if err != nil {
			st.closeSockets()
			return nil, err
		}
		st.sides[i] = &endpoint{side: Side(i), rtp: rtpc, rtcp: rtcpc,
			port: rtpc.LocalAddr().(*net.UDPAddr).Port}
	}
	r.streams = append(r.streams, st)
	if r.started {
		st.start()
	}
	return st, nil
}

// Local is where parapet receives this stream from side s's peer.
func (st *RelayStream) Local(s Side, advertise netip.Addr) Endpoint {
	e := st.sides[s]
	if !advertise.IsValid() {
		advertise = st.r.pool.addr
	}
	return Endpoint{Addr: advertise, Port: e.port, RTCPPort: e.port + 1}
}

// Configure sets side s's peer for this stream. Keys that did not change
// keep their contexts (and so their replay windows and rollover counters);
// a changed address resets the latched source.
func (st *RelayStream) Configure(s Side, pc PeerConfig) error {
	st.cfgMu.Lock()
	defer st.cfgMu.Unlock()
	e := st.sides[s]
	old := e.cfg.Load()
	n := &peerConfig{rtp: pc.RTP, rtcp: pc.RTCP, mux: pc.Mux, sources: slices.Clone(pc.Sources)}
	if old == nil {
		old = &peerConfig{}
	}
	n.gone = old.gone
	if pc.NewPeer {
		n.gone = nil
		for _, l := range []*netip.AddrPort{e.latchRTP.Swap(nil), e.latchRTCP.Swap(nil)} {
			if l != nil && *l != pc.RTP && *l != pc.RTCP {
				n.gone = append(n.gone, *l)
			}
		}
	}
	restartDTLS := false
	if pc.DTLS != nil {
		if pc.In != nil || pc.Out != nil {
			return errors.New("a side is keyed by SDES or by DTLS-SRTP, not both")
		}
		n.dtls = pc.DTLS.clone()
		restartDTLS = old.dtls == nil || !old.dtls.equal(pc.DTLS) || old.mux != pc.Mux
		if restartDTLS {
			n.waitRTP, n.waitRTCP = true, true
		} else {
			// The same association goes on (a re-offer that kept it).
			n.decRTP, n.decRTCP, n.encRTP, n.encRTCP = old.decRTP, old.decRTCP, old.encRTP, old.encRTCP
			n.waitRTP, n.waitRTCP = old.waitRTP, old.waitRTCP
		}
	} else if err := st.sdesKeys(e, old, n, pc); err != nil {
		return err
	}
	if old.rtp != n.rtp || old.rtcp != n.rtcp || old.mux != n.mux || old.dtls != nil && n.dtls == nil {
		e.latchRTP.Store(nil)
		e.latchRTCP.Store(nil)
	}
	e.cfg.Store(n)
	if restartDTLS {
		return st.startDTLS(e, pc)
	}
	return nil
}

// sdesKeys fills n's contexts from pc's SDES keys (none for plain RTP),
// keeping old's where a key did not change, and ends any DTLS-SRTP
// association the side had. Caller holds st.cfgMu.
func (st *RelayStream) sdesKeys(e *endpoint, old, n *peerConfig, pc PeerConfig) error {
	if old.dtls != nil {
		st.stopDTLS(e)
		e.keying.Store(nil)
		old = &peerConfig{}
	}
	var err error
	if pc.In != nil {
		n.inKey = bytes.Clone(pc.In.Key)
		n.decRTP, n.decRTCP, err = contextPair(old.inKey, n.inKey, old.decRTP, old.decRTCP,
			func() (*decryptor, error) { return newDecryptor(pc.In) })
		if err != nil {
			return err
		}
	}
	if pc.Out != nil {
		n.outKey = bytes.Clone(pc.Out.Key)
		n.encRTP, n.encRTCP, err = contextPair(old.outKey, n.outKey, old.encRTP, old.encRTCP,
			func() (*srtp.Context, error) { return newEncryptor(pc.Out) })
		if err != nil {
			return err
		}
	}
	return nil
}

// contextPair returns the RTP and RTCP contexts for a key: the running pair
// when the key did not change, a new pair otherwise. RTP and RTCP have
// contexts of their own because they have owners of their own (see
// handleRTCP).
func contextPair[T comparable](oldKey, newKey []byte, oldRTP, oldRTCP T, newCtx func() (T, error)) (T, T, error) {
	var zero T
	if oldRTP != zero && bytes.Equal(oldKey, newKey) {
		return oldRTP, oldRTCP, nil
	}
	rtp, err := newCtx()
	if err != nil {
		return zero, zero, err
	}
	rtcp, err := newCtx()
	if err != nil {
		return zero, zero, err
	}
	return rtp, rtcp, nil
}

// Start starts the relay's goroutines: one reader per socket. The idle
// watchdog waits for Watch.
func (r *Relay) Start() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.closed {
		return
	}
	r.started = true
	for _, st := range r.streams {
		st.start()
	}
}

// Watch arms the idle watchdog (when Timeout is set): from now on, no
// valid packet for Timeout (HoldTimeout on hold) calls OnIdle. A call is
// watched from its answer on: before it, a callee may ring in silence for
// longer than the media timeout. Watch is idempotent.
func (r *Relay) Watch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watching || r.closed || r.cfg.Timeout <= 0 {
		return
	}
	r.watching = true
	r.wg.Add(1)
	go r.watchdog()
}

func (st *RelayStream) start() {
	for _, e := range st.sides {
		st.r.wg.Add(2)
		go st.serve(e, e.rtp, false)
		go st.serve(e, e.rtcp, true)
	}
}

func (r *Relay) watchdog() {
	defer r.wg.Done()
	tick := min(r.cfg.Timeout/4, time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	lastActive := time.Now()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			if r.active.Swap(false) {
				lastActive = now
				continue
			}
			limit, held := r.cfg.Timeout, false
			if r.hold.Load() && r.cfg.HoldTimeout > limit {
				limit, held = r.cfg.HoldTimeout, true
			}
			if now.Sub(lastActive) > limit {
				if r.idle.CompareAndSwap(false, true) && r.cfg.OnIdle != nil {
					r.cfg.OnIdle(limit, held)
				}
				return
			}
		}
	}
}

// Counters returns side s's counters summed over all streams.
func (r *Relay) Counters(s Side) Counters { return r.counters[s].snapshot() }

// Close stops the relay, closes its sockets and returns its ports to the
// pool. It waits for the reader goroutines to exit and is idempotent.
func (r *Relay) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.done)
	streams := r.streams
	r.mu.Unlock()
	for _, st := range streams {
		st.cfgMu.Lock()
		for _, e := range st.sides {
			if e != nil {
				st.stopDTLS(e)
			}
		}
		st.cfgMu.Unlock()
		st.closeSockets()
	}
	r.wg.Wait()
}

func (st *RelayStream) closeSockets() {
	for _, e := range st.sides {
		if e == nil {
			continue
		}
		e.rtp.Close()
		e.rtcp.Close()
		st.r.pool.release(e.port)
	}
}

// isRTCP tells RTCP from RTP on a multiplexed port: RTCP packet types 192-223
// land in the RTP payload-type range 64-95 with the marker bit (RFC 5761
// section 4).
func isRTCP(pkt []byte) bool { return len(pkt) > 1 && pkt[1] >= 192 && pkt[1] <= 223 }

// rtpPaddingOK applies RFC 3550's validity check (appendix A.1) to an RTP
// packet with the padding bit: its last octet counts the padding, which
// must be at least 1 and fit after the header.
func rtpPaddingOK(pkt []byte, h *rtp.Header) bool {
	if !h.Padding {
		return true
	}
	pad := int(pkt[len(pkt)-1])
	return pad > 0 && h.MarshalSize()+pad <= len(pkt)
}

const bufSize = 2048

// scratch is one reader goroutine's reusable buffers, so handling a packet
// allocates nothing.
type scratch struct {
	plain, enc []byte
	rh         rtp.Header
	ch         rtcp.Header
	seq        seqGuard
}

func newScratch() *scratch {
	return &scratch{plain: make([]byte, bufSize), enc: make([]byte, bufSize)}
}

// serve reads one socket: packets from side e's peer, bound for the other
// side. A panic while handling a packet (a bug, never expected) drops that
// packet, is counted and logged, and the reader goes on.
func (st *RelayStream) serve(e *endpoint, conn *net.UDPConn, rtcpSocket bool) {
	defer st.r.wg.Done()
	buf := make([]byte, bufSize)
	sc := newScratch()
	for !st.pump(e, conn, rtcpSocket, buf, sc) {
	}
}

// pump runs the read loop until the socket closes (true) or a packet
// panics (false).
func (st *RelayStream) pump(e *endpoint, conn *net.UDPConn, rtcpSocket bool, buf []byte, sc *scratch) (closed bool) {
	r := st.r
	cout := &r.counters[e.side.Other()]
	defer func() {
		if p := recover(); p != nil {
			r.counters[e.side].malformed.Add(1)
			r.log.Error("media packet handling panicked; packet dropped", "side", e.side.String(), "panic", fmt.Sprint(p))
			closed = false
		}
	}()
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return true
			}
			select {
			case <-r.done:
				return true
			default:
			}
			continue // ICMP-induced errors and the like: keep reading
		}
		out, dst, wconn := st.handle(e, buf[:n], src, rtcpSocket, sc)
		if out == nil {
			continue
		}
		if _, err := wconn.WriteToUDPAddrPort(out, dst); err != nil {
			continue
		}
		cout.packetsOut.Add(1)
		cout.bytesOut.Add(uint64(len(out)))
	}
}

// handle validates, authenticates and decrypts one packet from side e's
// peer, and re-encrypts it for the other side. It returns the packet to
// send, where, and from which socket; a nil packet means drop (counted).
// It allocates nothing in the steady state.
//
// What a packet is follows from its first byte (RFC 7983), the socket it
// came in on and the side's rtcp-mux, never from the packet alone:
//
//   - 128-191 is RTP or RTCP; 0-3 STUN and 20-63 DTLS (see notMedia);
//     anything else (ZRTP 16-19, TURN channels 64-79, ...) is malformed.
//   - A side without rtcp-mux: its RTP port carries only RTP (marker-bit
//     RTP with payload type 64-95 stays RTP), its RTCP port only RTCP.
//   - A side with rtcp-mux: its RTP port carries both, told apart by RFC
//     5761 section 4 (second byte 192-223: RTCP). Its RTCP port carries
//     no media: what comes there is dropped as malformed (a peer that has
//     not yet applied a re-INVITE's rtcp-mux loses an RTCP report or two,
//     which RTCP's own timing tolerates).
//
// RTP goes through handleRTP, lock-free; RTCP through handleRTCP, which
// documents who owns the RTCP contexts.
func (st *RelayStream) handle(e *endpoint, pkt []byte, src netip.AddrPort, rtcpSocket bool, sc *scratch) ([]byte, netip.AddrPort, *net.UDPConn) {
	cin := &st.r.counters[e.side]
	if len(pkt) == 0 || pkt[0]>>6 != 2 {
		st.notMedia(e, pkt, src, rtcpSocket)
		return nil, netip.AddrPort{}, nil
	}
	// RTP and RTCP both start with version 2 (RFC 3550 sections 5.1, 6.4)
	// and at least 8 bytes.
	if len(pkt) < 8 {
		return dropped(&cin.malformed)
	}
	pc := e.cfg.Load()
	if pc == nil {
		return dropped(&cin.beforeAnswer)
	}
	switch {
	case !rtcpSocket && !(pc.mux && isRTCP(pkt)):
		return st.handleRTP(e, pc, pkt, src, sc)
	case rtcpSocket && (pc.mux || !isRTCP(pkt)):
		return dropped(&cin.malformed) // no RTCP is agreed on this port, or RTP on the RTCP port
	}
	return st.handleRTCP(e, pc, pkt, src, sc)
}

// notMedia handles what RFC 7983 says is not RTP/RTCP: STUN (first byte
// 0-3) is counted and dropped, as parapet does no ICE and answers no
// binding request; DTLS (20-63) goes to the side's association; the rest
// is malformed.
func (st *RelayStream) notMedia(e *endpoint, pkt []byte, src netip.AddrPort, rtcpSocket bool) {
	cin := &st.r.counters[e.side]
	switch {
	case isDTLS(pkt):
		st.dtlsPacket(e, pkt, src, rtcpSocket)
	case isSTUN(pkt):
		cin.stun.Add(1)
	default:
		cin.malformed.Add(1)
	}
}

// stunMagicCookie is the fixed value at bytes 4-7 of every STUN message
// (RFC 5389 section 6).
const stunMagicCookie = 0x2112A442

// isSTUN tells a STUN message: first byte 0-3 (RFC 7983), the magic cookie,
// and a length field (a multiple of 4) that covers the rest exactly.
func isSTUN(pkt []byte) bool {
	if len(pkt) < 20 || pkt[0] > 3 || binary.BigEndian.Uint32(pkt[4:8]) != stunMagicCookie {
		return false
	}
	l := int(binary.BigEndian.Uint16(pkt[2:4]))
	return l%4 == 0 && 20+l == len(pkt)
}

// dropped counts a dropped packet on c and returns what handle returns
// for it: nothing to send.
func dropped(c *atomic.Uint64) ([]byte, netip.AddrPort, *net.UDPConn) {
	c.Add(1)
	return nil, netip.AddrPort{}, nil
}

// flow is where packets from side e's peer go: the other side, with the
// counters of e's side (in) and of the other (out).
func (st *RelayStream) flow(e *endpoint) (out *endpoint, cin, cout *counters) {
	o := e.side.Other()
	return st.sides[o], &st.r.counters[e.side], &st.r.counters[o]
}

// admitSource applies the latch, latched being what it holds: once a side
// latched, only its peer's address; before, plain media only from the
// peer's own addresses (an SRTP side latches on its first authenticated
// packet instead).
func admitSource(latched *netip.AddrPort, pc *peerConfig, plainIn bool, src netip.AddrPort) bool {
	if latched != nil {
		return *latched == src
	}
	if slices.Contains(pc.gone, src) {
		return false // the peer a transfer replaced
	}
	// Unauthenticated media latches only from the peer's own addresses.
	return !plainIn || pc.peerSource(src)
}

// peerSource reports whether src is one of the peer's own addresses, or
// the peer has none listed.
func (pc *peerConfig) peerSource(src netip.AddrPort) bool {
	return len(pc.sources) == 0 || slices.Contains(pc.sources, src.Addr().Unmap())
}

// latch latches a side onto src unless latched, what it holds, is set.
func latch(l *atomic.Pointer[netip.AddrPort], latched *netip.AddrPort, src netip.AddrPort) {
	if latched == nil {
		a := src // escapes only when latching
		l.Store(&a)
	}
}

// accepted counts a valid packet (n bytes) from the peer of the side whose
// counters are cin.
func (st *RelayStream) accepted(cin *counters, n int) {
	cin.packetsIn.Add(1)
	cin.bytesIn.Add(uint64(n))
	if !st.r.active.Load() {
		st.r.active.Store(true)
	}
}

// handleRTP handles an RTP packet from side e's peer. The side's decRTP and
// the other side's encRTP are used by the reader of e's RTP socket only:
// RTP is never read anywhere else, whatever the configuration, so this
// path takes no lock.
func (st *RelayStream) handleRTP(e *endpoint, pc *peerConfig, pkt []byte, src netip.AddrPort, sc *scratch) ([]byte, netip.AddrPort, *net.UDPConn) {
	out, cin, cout := st.flow(e)
	n := len(pkt)
	if pc.waitRTP {
		return dropped(&cin.beforeAnswer) // DTLS-SRTP keys not agreed yet
	}
	if n < 12 {
		return dropped(&cin.malformed)
	}
	d := pc.decRTP
	plainIn := d == nil
	latched := e.latchRTP.Load()
	if !admitSource(latched, pc, plainIn, src) {
		return dropped(&cin.wrongSource)
	}
	var plain []byte
	var err error
	if d != nil {
		d.replayed = false
		plain, err = d.ctx.DecryptRTP(sc.plain, pkt, &sc.rh)
	} else if _, err = sc.rh.Unmarshal(pkt); err == nil {
		plain = pkt
	}
	if err != nil {
		switch {
		case d == nil:
			cin.malformed.Add(1)
		case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
			cin.authFailures.Add(1)
		case d.replayed:
			cin.replays.Add(1)
		default:
			// A valid RTP header with no room for the tag after it
			// cannot be SRTP: plain RTP on an SRTP side.
			if hl, herr := sc.rh.Unmarshal(pkt); herr == nil && n < hl+d.rtpOverhead {
				cin.unprotected.Add(1)
			} else {
				cin.malformed.Add(1)
			}
		}
		return nil, netip.AddrPort{}, nil
	}
	if sc.rh.Padding && !rtpPaddingOK(plain, &sc.rh) {
		return dropped(&cin.malformed)
	}
	latch(&e.latchRTP, latched, src)
	st.accepted(cin, n)

	opc := out.cfg.Load()
	if opc == nil || opc.waitRTP {
		return dropped(&cin.beforeAnswer) // the other side is not negotiated (or keyed) yet
	}
	dst := opc.rtp
	if l := out.latchRTP.Load(); l != nil {
		dst = *l
	}
	if !dst.IsValid() || dst.Port() == 0 || dst.Addr().IsUnspecified() {
		return nil, netip.AddrPort{}, nil // on hold (c=0.0.0.0) or no address yet
	}
	o := plain
	if opc.encRTP != nil {
		if plainIn && !sc.seq.admit(plain, &sc.rh) {
			// A plain packet whose sequence number was already encrypted
			// under this SSRC: encrypting it again would reuse the key
			// stream (RFC 3711 section 9.1).
			return dropped(&cin.replays)
		}
		if o, err = opc.encRTP.EncryptRTP(sc.enc[:0], plain, &sc.rh); err != nil {
			return dropped(&cout.malformed)
		}
	}
	return o, dst, out.rtp
}

// handleRTCP handles an RTCP packet from side e's peer, on whichever socket
// carries the side's RTCP.
//
// One owner per crypto context. A flow's RTP contexts (the sending side's
// decRTP, the other side's encRTP) belong to the sending side's RTP socket
// reader, always (handleRTP). A flow's RTCP contexts (the sending side's
// decRTCP, the other side's encRTCP) belong to the reader of the socket that
// carries the sending side's RTCP: its RTCP socket, or its RTP socket under
// rtcp-mux. A re-INVITE can switch rtcp-mux while Configure keeps the
// contexts whose key did not change — as it must: a second encrypt context
// with the same key would repeat SRTCP indices (a two-time pad), a second
// decrypt context would forget the replay window. Their owner then changes
// from one reader to the other at a moment neither controls, while the old
// one may be inside a packet. That hand-over needs a synchronisation point,
// and e.rtcpMu is it: every use of a flow's RTCP contexts, and only here,
// holds the sending side's rtcpMu. RTCP is a few packets a second per
// stream, so the lock is uncontended (two readers only meet at a mux
// change) and costs tens of nanoseconds, where an RTCP goroutine per side
// fed by both readers would cost a goroutine, buffers, and a copy and a
// wake-up per packet. The RTP path never takes it.
func (st *RelayStream) handleRTCP(e *endpoint, pc *peerConfig, pkt []byte, src netip.AddrPort, sc *scratch) ([]byte, netip.AddrPort, *net.UDPConn) {
	out, cin, cout := st.flow(e)
	n := len(pkt)
	if pc.waitRTCP {
		return dropped(&cin.beforeAnswer) // DTLS-SRTP keys not agreed yet
	}
	l := &e.latchRTCP
	if pc.mux {
		l = &e.latchRTP
	}
	e.rtcpMu.Lock()
	defer e.rtcpMu.Unlock()
	d := pc.decRTCP
	plainIn := d == nil
	if !admitSource(l.Load(), pc, plainIn, src) {
		return dropped(&cin.wrongSource)
	}
	var plain []byte
	var err error
	if d != nil {
		d.replayed = false
		plain, err = d.ctx.DecryptRTCP(sc.plain, pkt, &sc.ch)
	} else if err = sc.ch.Unmarshal(pkt); err == nil {
		if !rtcpLengthsOK(pkt) {
			return dropped(&cin.malformed)
		}
		plain = pkt
	}
	if err != nil {
		switch {
		case d == nil:
			cin.malformed.Add(1)
		case rtcpLengthsOK(pkt):
			// A plain compound packet: its length fields walk exactly to
			// its end, where SRTCP has its index word and tag (whose
			// index the replay check may have read first).
			cin.unprotected.Add(1)
		case errors.Is(err, srtp.ErrFailedToVerifyAuthTag):
			cin.authFailures.Add(1)
		case d.replayed:
			cin.replays.Add(1)
		default:
			cin.malformed.Add(1)
		}
		return nil, netip.AddrPort{}, nil
	}
	latch(l, l.Load(), src)
	st.accepted(cin, n)

	opc := out.cfg.Load()
	if opc == nil || opc.waitRTCP {
		return dropped(&cin.beforeAnswer) // the other side is not negotiated (or keyed) yet
	}
	wconn, dst, ol := out.rtp, opc.rtp, out.latchRTP.Load()
	if !opc.mux {
		wconn, dst, ol = out.rtcp, opc.rtcp, out.latchRTCP.Load()
	}
	if ol != nil {
		dst = *ol
	}
	if !dst.IsValid() || dst.Port() == 0 || dst.Addr().IsUnspecified() {
		return nil, netip.AddrPort{}, nil // on hold (c=0.0.0.0) or no address yet
	}
	o := plain
	if opc.encRTCP != nil {
		if o, err = opc.encRTCP.EncryptRTCP(sc.enc[:0], plain, &sc.ch); err != nil {
			return dropped(&cout.malformed)
		}
	}
	return o, dst, wconn
}

// Processor runs the relay's per-packet path for packets arriving from one
// side, without sockets: the same validation, authentication, replay
// check, decryption, latching and re-encryption as a live relay. It exists
// for benchmarks and tests. A Processor is not safe for concurrent use.
type Processor struct {
	st *RelayStream
	e  *endpoint
	sc *scratch
}

// Processor returns a processor for packets from side from's peer.
func (st *RelayStream) Processor(from Side) *Processor {
	return &Processor{st: st, e: st.sides[from], sc: newScratch()}
}

// Handle processes one packet that src sent to the side's RTP port: RTP, or
// RTCP multiplexed with it when the side has rtcp-mux.
// It returns the packet parapet would send to the other side and where; a
// nil packet means it was dropped (and counted). The returned slice is
// reused by the next call.
func (p *Processor) Handle(pkt []byte, src netip.AddrPort) ([]byte, netip.AddrPort) {
	out, dst, _ := p.st.handle(p.e, pkt, src, false, p.sc)
	return out, dst
}

// seqGuard keeps the packet index of plain RTP that parapet encrypts unique
// per SSRC, as SRTP requires: an SRTP input has its own replay protection,
// a plain one has none, so a peer that repeats a sequence number (a
// retransmission, a restarted phone, a forgery) would make parapet encrypt
// two payloads under the same key stream. Duplicates within the last 64
// packets are dropped; a jump back of more than maxSeqBack is a restart,
// and the stream is renumbered to go on after the highest number sent;
// packets in between are too late and dropped. It belongs to one reader
// goroutine and allocates nothing.
type seqGuard struct {
	slots [4]seqSlot
	next  int // round-robin victim when a new SSRC needs a slot
}

type seqSlot struct {
	used   bool
	ssrc   uint32
	offset uint16 // added to the peer's numbers after a restart
	high   uint64 // highest extended sequence number sent
	mask   uint64 // bit i: high-i was sent
}

const maxSeqBack = 512

// admit decides packet pkt (header h): false drops it. It may renumber the
// packet, in pkt and in h alike.
func (g *seqGuard) admit(pkt []byte, h *rtp.Header) bool {
	var sl *seqSlot
	for i := range g.slots {
		if g.slots[i].used && g.slots[i].ssrc == h.SSRC {
			sl = &g.slots[i]
			break
		}
	}
	if sl == nil {
		sl = &g.slots[g.next]
		g.next = (g.next + 1) % len(g.slots)
		*sl = seqSlot{used: true, ssrc: h.SSRC, high: uint64(h.SequenceNumber) + 1<<16, mask: 1}
		return true
	}
	seq := h.SequenceNumber + sl.offset
	ext := int64(sl.high) + int64(int16(seq-uint16(sl.high)))
	switch back := int64(sl.high) - ext; {
	case back < 0:
		if -back >= 64 {
			sl.mask = 0
		} else {
			sl.mask <<= uint(-back)
		}
		sl.mask |= 1
		sl.high = uint64(ext)
	case back < 64:
		if sl.mask&(1<<uint(back)) != 0 {
			return false
		}
		sl.mask |= 1 << uint(back)
	case back > maxSeqBack:
		// A restart: go on after the highest number sent.
		sl.offset += uint16(sl.high+1) - seq
		seq = uint16(sl.high + 1)
		sl.high++
		sl.mask = sl.mask<<1 | 1
	default:
		return false
	}
	if seq != h.SequenceNumber {
		h.SequenceNumber = seq
		binary.BigEndian.PutUint16(pkt[2:4], seq)
	}
	return true
}

// rtcpLengthsOK reports whether a plain (unauthenticated) RTCP packet's
// length fields walk exactly to its end, each part version 2 (RFC 3550
// section 6.1): parapet would otherwise encrypt, and so vouch for, a
// packet its receiver cannot parse.
func rtcpLengthsOK(pkt []byte) bool {
	off := 0
	for off < len(pkt) {
		if len(pkt)-off < 4 || pkt[off]>>6 != 2 {
			return false
		}
		off += (int(binary.BigEndian.Uint16(pkt[off+2:off+4])) + 1) * 4
	}
	return off == len(pkt)
}
