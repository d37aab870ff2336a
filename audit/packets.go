package audit

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/parapet-sbc/parapet/policy"
)

// packetReader is what pcapgo's two readers have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// readPcap reads a pcap (ng false) or pcapng file packet by packet.
func (a *analyzer) readPcap(r io.Reader, path string, ng bool) error {
	var pr packetReader
	var linkType func(gopacket.CaptureInfo) layers.LinkType
	if ng {
		nr, err := pcapgo.NewNgReader(r, pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			return fmt.Errorf("audit: %s: reading pcapng header: %w", path, truncation(err))
		}
		pr = nr
		first := nr.LinkType()
		linkType = func(ci gopacket.CaptureInfo) layers.LinkType {
			if len(ci.AncillaryData) > 0 {
				if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					return lt
				}
			}
			return first
		}
	} else {
		pr0, err := pcapgo.NewReader(r)
		if err != nil {
			return fmt.Errorf("audit: %s: reading pcap header: %w", path, truncation(err))
		}
		pr = pr0
		lt := pr0.LinkType()
		linkType = func(gopacket.CaptureInfo) layers.LinkType { return lt }
	}
	for {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: %s: stopped after %d packets: %w", path, a.packets, truncation(err))
		}
		a.packet(data, ci, linkType(ci))
	}
}

// truncation maps a short read to ErrTruncated, keeping the cause.
func truncation(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (the file ends in the middle of a packet): %w", ErrTruncated, err)
	}
	return err
}

// packet decodes one captured frame down to UDP or TCP.
func (a *analyzer) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) {
	a.packets++
	t := ci.Timestamp.UTC()
	if t.After(a.last) {
		a.last = t
	}
	if ci.CaptureLength < ci.Length {
		a.snapCut++
	}
	if a.packets%sweepEvery == 0 {
		a.sweep(t)
	}
	p := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	var src, dst netip.Addr
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
			a.fragments++
			a.undecoded++
			return
		}
		src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		src, _ = netip.AddrFromSlice(ip.SrcIP)
		dst, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		a.undecoded++
		return
	}
	switch tr := p.TransportLayer().(type) {
	case *layers.UDP:
		a.udp(t, netip.AddrPortFrom(src, uint16(tr.SrcPort)), netip.AddrPortFrom(dst, uint16(tr.DstPort)), tr.Payload)
	case *layers.TCP:
		a.tcp(t, netip.AddrPortFrom(src, uint16(tr.SrcPort)), netip.AddrPortFrom(dst, uint16(tr.DstPort)), tr)
	default:
		a.undecoded++
	}
}

// udp handles one datagram: SIP, or a candidate media packet.
func (a *analyzer) udp(t time.Time, src, dst netip.AddrPort, payload []byte) {
	if len(payload) == 0 {
		return
	}
	if looksLikeSIP(payload) {
		m, _, err := parseSIP(payload, false)
		if err != nil {
			a.sipErrors++
			return
		}
		a.sip(t, src, dst, policy.TransportUDP, m)
		return
	}
	a.media(t, src, dst, payload)
}

// connKey names a TCP connection by its two ends, client first when known.
type connKey struct{ a, b netip.AddrPort }

// Stream kinds.
const (
	streamUnknown = iota
	streamSIP
	streamTLS
	streamOther
)

// Bounds of TCP reassembly.
const (
	maxPending    = 32       // out-of-order segments held per direction
	maxPendingLen = 64 << 10 // bytes held out of order per direction
	maxSIPBuffer  = maxSIPHeader + maxSIPBody
)

// tcpConn is one TCP connection: its two directions and what they carry.
type tcpConn struct {
	client, server netip.AddrPort
	first, last    time.Time
	kind           int
	half           [2]tcpHalf // 0: client to server, 1: server to client
	tls            *tlsConn
	fin            [2]bool
	done           bool
}

type segment struct {
	seq  uint32
	data []byte
}

// tcpHalf reassembles one direction in order, holding a few segments that
// arrive early; a gap that never fills is skipped.
type tcpHalf struct {
	started    bool
	next       uint32
	pending    []segment
	pendingLen int
	sipBuf     []byte
}

func seqDiff(a, b uint32) int32 { return int32(a - b) }

// tcp handles one segment.
func (a *analyzer) tcp(t time.Time, src, dst netip.AddrPort, tr *layers.TCP) {
	c, dir := a.conns[connKey{src, dst}], 0
	if c == nil {
		if c = a.conns[connKey{dst, src}]; c != nil {
			dir = 1
		}
	}
	if c == nil {
		if len(tr.Payload) == 0 && !(tr.SYN && !tr.ACK) {
			return
		}
		if len(a.conns) >= MaxConnections {
			a.untracked++
			return
		}
		c = &tcpConn{client: src, server: dst, first: t}
		if tr.SYN && tr.ACK { // we saw the SYN-ACK first: its sender is the server
			c.client, c.server, dir = dst, src, 1
		}
		a.conns[connKey{c.client, c.server}] = c
	}
	c.last = t
	h := &c.half[dir]
	seq := tr.Seq
	if tr.SYN {
		h.started, h.next = true, seq+1
		return
	}
	if !h.started {
		h.started, h.next = true, seq
	}
	if len(tr.Payload) > 0 {
		a.segment(c, dir, seq, tr.Payload)
	}
	if tr.FIN {
		c.fin[dir] = true
	}
	if tr.RST || (c.fin[0] && c.fin[1]) {
		a.closeConn(c)
	}
}

// segment places a payload in its direction's stream.
func (a *analyzer) segment(c *tcpConn, dir int, seq uint32, data []byte) {
	h := &c.half[dir]
	d := seqDiff(seq, h.next)
	switch {
	case d < 0: // retransmission, maybe partly new
		if int(-d) >= len(data) {
			return
		}
		data = data[-d:]
	case d > 0:
		if len(h.pending) < maxPending && h.pendingLen+len(data) <= maxPendingLen {
			h.pending = append(h.pending, segment{seq, append([]byte(nil), data...)})
			h.pendingLen += len(data)
			return
		}
		// The gap did not fill: give up on it and read on from the
		// earliest segment held.
		a.tcpGap++
		a.skipGap(c, dir)
		if seqDiff(seq, h.next) != 0 {
			h.pending = append(h.pending, segment{seq, append([]byte(nil), data...)})
			h.pendingLen += len(data)
			a.drain(c, dir)
			return
		}
	}
	a.deliver(c, dir, data)
	h.next += uint32(len(data))
	a.drain(c, dir)
}

// drain delivers held segments that have become in order.
func (a *analyzer) drain(c *tcpConn, dir int) {
	h := &c.half[dir]
	for progress := true; progress; {
		progress = false
		for i := 0; i < len(h.pending); i++ {
			s := h.pending[i]
			d := seqDiff(s.seq, h.next)
			if d > 0 {
				continue
			}
			h.pending = append(h.pending[:i], h.pending[i+1:]...)
			h.pendingLen -= len(s.data)
			if int(-d) < len(s.data) {
				a.deliver(c, dir, s.data[-d:])
				h.next += uint32(len(s.data) + int(d))
			}
			progress = true
			break
		}
	}
}

// skipGap moves a direction past a gap to its earliest held segment, and
// drops what was buffered before the gap (it cannot be completed).
func (a *analyzer) skipGap(c *tcpConn, dir int) {
	h := &c.half[dir]
	if len(h.pending) == 0 {
		return
	}
	low := h.pending[0].seq
	for _, s := range h.pending[1:] {
		if seqDiff(s.seq, low) < 0 {
			low = s.seq
		}
	}
	h.next = low
	h.sipBuf = nil
	if c.tls != nil {
		c.tls.half[dir].broken = errors.New("gap in the TCP stream")
	}
}

// deliver hands in-order bytes to the stream's reader.
func (a *analyzer) deliver(c *tcpConn, dir int, data []byte) {
	if c.kind == streamUnknown {
		switch {
		case len(data) >= 3 && data[0] == recHandshake && data[1] == 3:
			c.kind = streamTLS
			a.nTLS++
			c.tls = newTLSConn(c, a.nTLS)
			a.tlsPairs[hostPair(c.client, c.server)]++
		case looksLikeSIP(data):
			c.kind = streamSIP
		default:
			c.kind = streamOther
		}
	}
	switch c.kind {
	case streamTLS:
		c.tls.feed(dir, data)
	case streamSIP:
		a.tcpSIP(c, dir, data)
	}
}

// tcpSIP frames SIP messages by Content-Length.
func (a *analyzer) tcpSIP(c *tcpConn, dir int, data []byte) {
	h := &c.half[dir]
	h.sipBuf = append(h.sipBuf, data...)
	src, dst := c.client, c.server
	if dir == 1 {
		src, dst = dst, src
	}
	for len(h.sipBuf) > 0 {
		// Keep-alives (RFC 5626 CRLF) between messages.
		for len(h.sipBuf) > 0 && (h.sipBuf[0] == '\r' || h.sipBuf[0] == '\n') {
			h.sipBuf = h.sipBuf[1:]
		}
		if len(h.sipBuf) == 0 {
			break
		}
		m, n, err := parseSIP(h.sipBuf, true)
		if errors.Is(err, errIncomplete) {
			if len(h.sipBuf) > maxSIPBuffer {
				a.sipErrors++
				h.sipBuf = nil
			}
			break
		}
		if err != nil {
			a.sipErrors++
			h.sipBuf = resync(h.sipBuf)
			continue
		}
		h.sipBuf = h.sipBuf[n:]
		a.sip(c.last, src, dst, policy.TransportTCP, m)
	}
	if len(h.sipBuf) == 0 {
		h.sipBuf = nil
	} else if cap(h.sipBuf) > 2*maxSIPBuffer {
		h.sipBuf = append([]byte(nil), h.sipBuf...)
	}
}

// resync drops bytes up to the next line that starts like a SIP message.
func resync(b []byte) []byte {
	for i := 1; i < len(b); i++ {
		if b[i-1] == '\n' && looksLikeSIP(b[i:]) {
			return b[i:]
		}
	}
	return nil
}

// closeConn ends a connection: a TLS one is judged now.
func (a *analyzer) closeConn(c *tcpConn) {
	if c.done {
		return
	}
	c.done = true
	delete(a.conns, connKey{c.client, c.server})
	if c.tls != nil {
		a.judgeTLS(c)
		hp := hostPair(c.client, c.server)
		if a.tlsPairs[hp]--; a.tlsPairs[hp] <= 0 {
			delete(a.tlsPairs, hp)
			delete(a.byHosts, hp)
		}
	}
}
