package sim

// A session's RTP or SRTP media: the socket's reader, the deterministic
// payloads it sends and checks, and the counts tests assert on.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// PayloadSize is the size of the simulated audio payload: 20 ms of G.711.
const PayloadSize = 160

// Payload is the deterministic test payload for a sequence number. The
// receiver recomputes it, so a payload that arrives intact proves the relay
// decrypted and re-encrypted correctly.
func Payload(seq uint16) []byte {
	p := make([]byte, PayloadSize)
	for i := range p {
		p[i] = byte(int(seq)*7 + i*13 + 1)
	}
	return p
}

// MediaStats counts what a session's media socket saw.
type MediaStats struct {
	Sent int64
	// Received counts RTP packets received. On a DTLS-SRTP session, those
	// that arrive before the handshake agreed keys count here (and in
	// PlainOnWire if they are plaintext) and are otherwise dropped.
	Received int64
	// Intact counts packets that decrypted (on SRTP) and carried exactly the
	// expected payload.
	Intact int64
	// Damaged counts packets that failed to decrypt or carried a wrong payload.
	Damaged int64
	// PlainOnWire counts received packets whose payload, as it came off the
	// wire, was the plaintext: on an SRTP session this must stay 0.
	PlainOnWire int64
	// From is the source address of the last packet received.
	From netip.AddrPort
}

type mediaStats struct {
	sent, received, intact, damaged, plainOnWire atomic.Int64
	mu                                           sync.Mutex
	from                                         netip.AddrPort
}

// Stats returns the session's media counters.
func (s *Session) Stats() MediaStats {
	s.stats.mu.Lock()
	from := s.stats.from
	s.stats.mu.Unlock()
	return MediaStats{Sent: s.stats.sent.Load(), Received: s.stats.received.Load(), Intact: s.stats.intact.Load(),
		Damaged: s.stats.damaged.Load(), PlainOnWire: s.stats.plainOnWire.Load(), From: from}
}

// MediaAddr is where the session receives RTP.
func (s *Session) MediaAddr() netip.AddrPort {
	return netip.AddrPortFrom(s.p.cfg.MediaAddr, uint16(s.port))
}

// RemoteMedia is where the session sends RTP (from the other side's SDP).
func (s *Session) RemoteMedia() netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// start runs the session's media: its reader, its DTLS-SRTP handshake if
// it has one, and what closes them when the dialog ends. It runs once; a
// callee that sends early media (Answer.Early) starts at its 183.
func (s *Session) start() { s.startOnce.Do(s.startMedia) }

func (s *Session) startMedia() {
	s.wg.Add(1)
	go s.receive()
	d := s.dtlsNow()
	if d != nil {
		s.wg.Add(1)
		go s.runDTLS(d)
	}
	// When the dialog ends (a BYE either way), the media socket closes; its
	// counters stay readable.
	go func() {
		select {
		case <-s.Context().Done():
		case <-s.p.done:
		}
		s.p.untrack(s)
		s.closeMedia()
	}()
}

func (s *Session) closeMedia() {
	if s.closed.CompareAndSwap(false, true) {
		s.closeDTLS()
		s.conn.Close()
		s.wg.Wait()
	}
}

func (s *Session) receive() {
	defer s.wg.Done()
	buf := make([]byte, 2048)
	var dec *srtp.Context
	var decKey []byte
	var h rtp.Header
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		pkt := buf[:n]
		if isDTLS(pkt) {
			s.dpc.deliver(pkt)
			continue
		}
		if n < 12 || pkt[0]>>6 != 2 || (pkt[1] >= 192 && pkt[1] <= 223) {
			continue // not RTP (RTCP is ignored)
		}
		s.stats.received.Add(1)
		s.stats.mu.Lock()
		s.stats.from = from
		s.stats.mu.Unlock()
		s.mu.Lock()
		recv := s.recv
		unkeyed := s.dtls != nil && recv == nil
		s.mu.Unlock()
		hl, err := h.Unmarshal(pkt)
		if err != nil {
			s.stats.damaged.Add(1)
			continue
		}
		want := Payload(h.SequenceNumber)
		if n >= hl+PayloadSize && bytes.Equal(pkt[hl:hl+PayloadSize], want) {
			s.stats.plainOnWire.Add(1)
		}
		if unkeyed {
			continue // DTLS-SRTP without keys yet: nothing to decrypt with
		}
		payload := pkt[hl:]
		if recv != nil {
			if dec == nil || !bytes.Equal(decKey, recv.key) {
				if dec, err = contextFor(recv, true); err != nil {
					s.stats.damaged.Add(1)
					continue
				}
				decKey = recv.key
			}
			plain, err := dec.DecryptRTP(nil, pkt, &h)
			if err != nil {
				s.stats.damaged.Add(1)
				continue
			}
			payload = plain[hl:]
		}
		if bytes.Equal(payload, want) {
			s.stats.intact.Add(1)
		} else {
			s.stats.damaged.Add(1)
		}
	}
}

// Packet builds the packet the session would send for seq: RTP, protected
// with the session's key when it runs SRTP. A fresh encrypt context is used
// per call, so the result is what the first transmission of seq looks like.
func (s *Session) Packet(seq uint16) ([]byte, error) {
	s.mu.Lock()
	send := s.send
	s.mu.Unlock()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq,
		Timestamp: uint32(seq) * 160, SSRC: s.ssrc()}, Payload: Payload(seq)}
	raw, err := p.Marshal()
	if err != nil || send == nil {
		return raw, err
	}
	enc, err := contextFor(send, false)
	if err != nil {
		return nil, err
	}
	return enc.EncryptRTP(nil, raw, nil)
}

func (s *Session) ssrc() uint32 {
	var x uint32 = 2166136261
	for i := 0; i < len(s.callID); i++ {
		x = (x ^ uint32(s.callID[i])) * 16777619
	}
	return x
}

// Send sends n packets, one every interval, starting at sequence number
// first, to the other side's media address. On a DTLS-SRTP session it
// first waits (at most until ctx ends) for the handshake's keys.
func (s *Session) Send(ctx context.Context, first uint16, n int, interval time.Duration) error {
	if err := s.waitKeys(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	send := s.send
	dst := s.remote
	s.mu.Unlock()
	var enc *srtp.Context
	var err error
	if send != nil {
		if enc, err = contextFor(send, false); err != nil {
			return err
		}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	out := make([]byte, 0, 256)
	for i := range n {
		seq := first + uint16(i)
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq,
			Timestamp: uint32(seq) * 160, SSRC: s.ssrc()}, Payload: Payload(seq)}
		raw, err := p.Marshal()
		if err != nil {
			return err
		}
		if enc != nil {
			if out, err = enc.EncryptRTP(out[:0], raw, nil); err != nil {
				return err
			}
			raw = out
		}
		if _, err := s.conn.WriteToUDPAddrPort(raw, dst); err != nil {
			return err
		}
		s.stats.sent.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Prime sends one packet each way between a and b (sequence numbers from
// 500 and 4500, so count with later ones), every 20 ms, until one has arrived intact at each end, so
// that counted traffic starts on a working path: with DTLS-SRTP each leg
// keys itself when its handshake ends, and what is sent before is lost, as
// it would be for a real phone. It gives up after 10 s.
func Prime(ctx context.Context, a, b *Session) error {
	deadline := time.Now().Add(10 * time.Second)
	for i := uint16(0); a.Stats().Intact == 0 || b.Stats().Intact == 0; i++ {
		if time.Now().After(deadline) {
			return fmt.Errorf("sim: media does not flow: %+v and %+v", a.Stats(), b.Stats())
		}
		if err := a.Send(ctx, 500+i, 1, time.Millisecond); err != nil {
			return err
		}
		if err := b.Send(ctx, 4500+i, 1, time.Millisecond); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	time.Sleep(50 * time.Millisecond) // let packets in flight land
	return nil
}

// SendRaw sends pkt from the session's media socket to the other side.
func (s *Session) SendRaw(pkt []byte) error {
	_, err := s.conn.WriteToUDPAddrPort(pkt, s.RemoteMedia())
	return err
}

// WaitIntact waits until at least n intact packets arrived.
func (s *Session) WaitIntact(ctx context.Context, n int64) error {
	for s.stats.intact.Load() < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}
