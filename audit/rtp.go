package audit

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
)

// Classification parameters (docs: README-for-lead.md, Media flows).
const (
	// minRTPRun is how many packets in a row must agree (same SSRC,
	// sequence numbers close and increasing) before a flow the SDP did not
	// name counts as media.
	minRTPRun = 5
	// sampleFlowPackets and sampleFlowBytes bound the payload sampled per
	// flow; minSamplePackets is the least sample that gets a verdict.
	sampleFlowPackets = 200
	sampleFlowBytes   = 32 << 10
	minSamplePackets  = 10
	// encryptedEntropy is the payload byte entropy (bits per byte) from
	// which a payload looks encrypted or compressed; below plainEntropy it
	// is clear audio.
	encryptedEntropy = 7.5
	plainEntropy     = 7.0
)

type flowKey struct{ src, dst netip.AddrPort }

// sdpRef ties an address named by an SDP to its dialog's hop.
type sdpRef struct {
	d      *dialog
	h      *hop
	caller bool // named by the INVITE sender's SDP (else by the receiver's)
	// secure: the SDP's profile is an SRTP one.
	secure bool
}

// mediaFlow is one direction of a UDP 5-tuple that carries RTP or SRTP.
type mediaFlow struct {
	key         flowKey
	first, last time.Time
	packets     uint64
	bytes       uint64
	ssrc        uint32
	pt          uint8
	lastSeq     uint16
	run, bad    int
	media       bool // seen enough RTP-like packets, or named by an SDP
	ref         *sdpRef
	toNamed     bool // ref names the flow's destination (else its source)
	s           *flowSample
	pclass      string // the class from packets, kept when s is freed
}

// flowSample is what classification by packets reads of a flow's payloads.
type flowSample struct {
	hist       [256]uint32
	bytes      int
	packets    int
	hashes     []uint64
	dups       int
	firstBytes [256]bool
	g711Plain  int // payload a multiple of 80 bytes (10 ms of G.711)
	g711Tag    int // a multiple of 80 plus 4, 10 or 16 (an SRTP tag)
}

// rtpHeader reads an RTP (or SRTP: the header is in clear) header and
// returns the payload after the CSRCs and extension.
func rtpHeader(b []byte) (ssrc uint32, pt uint8, seq uint16, payload []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return 0, 0, 0, nil, false
	}
	pt = b[1] & 0x7f
	if pt >= 72 && pt <= 76 { // RTCP packet types 200-204 (RFC 5761 section 4)
		return 0, 0, 0, nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return 0, 0, 0, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if len(b) <= off {
		return 0, 0, 0, nil, false
	}
	return binary.BigEndian.Uint32(b[8:]), pt, binary.BigEndian.Uint16(b[2:]), b[off:], true
}

// media handles a UDP datagram that is not SIP.
func (a *analyzer) media(t time.Time, src, dst netip.AddrPort, b []byte) {
	ssrc, pt, seq, payload, ok := rtpHeader(b)
	if !ok {
		return
	}
	k := flowKey{src, dst}
	f := a.flows[k]
	if f == nil {
		if len(a.flows) >= MaxFlows {
			a.untracked++
			return
		}
		f = &mediaFlow{key: k, first: t, ssrc: ssrc, pt: pt, lastSeq: seq - 1}
		a.flows[k] = f
		a.tie(f)
		if hp := hostPair(src, dst); f.ref == nil && a.tlsPairs[hp] > 0 {
			a.byHosts[hp] = append(a.byHosts[hp], f)
		}
	}
	f.last = t
	f.packets++
	f.bytes += uint64(len(b))
	if ssrc == f.ssrc && seqDiff16(seq, f.lastSeq) > 0 && seqDiff16(seq, f.lastSeq) < 100 {
		f.run++
	} else {
		f.bad++
		f.run = 0
	}
	f.lastSeq = seq
	if f.run >= minRTPRun || f.ref != nil {
		f.media = true
	}
	if f.s == nil && a.sampled < MaxSampledFlows && f.run >= 2 {
		f.s = new(flowSample)
		a.sampled++
	}
	if f.s != nil && ssrc == f.ssrc {
		f.s.add(pt, payload)
	}
}

func seqDiff16(a, b uint16) int16 { return int16(a - b) }

// tie looks for the SDP that names a new flow's destination, or its source
// (symmetric RTP sends from the port it receives on).
func (a *analyzer) tie(f *mediaFlow) {
	if r := a.sdpIndex[f.key.dst]; r != nil {
		f.ref, f.toNamed = r, true
	} else if r := a.sdpIndex[f.key.src]; r != nil {
		f.ref, f.toNamed = r, false
	}
	if f.ref != nil {
		f.ref.d.flows = append(f.ref.d.flows, f)
	}
}

func (s *flowSample) add(pt uint8, p []byte) {
	if s.packets >= sampleFlowPackets || s.bytes >= sampleFlowBytes {
		return
	}
	s.packets++
	n := min(len(p), sampleFlowBytes-s.bytes)
	for _, c := range p[:n] {
		s.hist[c]++
	}
	s.bytes += n
	s.firstBytes[p[0]] = true
	h := fnv.New64a()
	h.Write(p)
	v := h.Sum64()
	if i, found := slices.BinarySearch(s.hashes, v); found {
		s.dups++
	} else {
		s.hashes = slices.Insert(s.hashes, i, v)
	}
	if pt == 0 || pt == 8 {
		switch len(p) % 80 {
		case 0:
			s.g711Plain++
		case 4, 10, 16:
			s.g711Tag++
		}
	}
}

// entropy is the Shannon entropy of the sampled payload bytes, in bits per
// byte.
func (s *flowSample) entropy() float64 {
	if s.bytes == 0 {
		return 0
	}
	var e float64
	for _, c := range s.hist {
		if c > 0 {
			p := float64(c) / float64(s.bytes)
			e -= p * math.Log2(p)
		}
	}
	return e
}

// distinctFirst counts the distinct first payload bytes.
func (s *flowSample) distinctFirst() int {
	n := 0
	for _, b := range s.firstBytes {
		if b {
			n++
		}
	}
	return n
}

// packetClass classifies a flow from its packets alone:
//
//   - a payload seen twice means clear RTP: SRTP encrypts each packet with
//     its own keystream, so no two payloads repeat (tones and silence do);
//   - payload byte entropy below plainEntropy means clear audio;
//   - G.711 (payload types 0 and 8): SRTP when the entropy is high and the
//     payloads are a multiple of 80 bytes plus an authentication tag (4,
//     10 or 16 bytes), RTP when they are an exact multiple;
//   - other codecs: SRTP when the entropy is high and the first payload byte
//     is as varied as random bytes (compressed codecs start their payload
//     with a header, opus a TOC byte, that repeats), RTP when the first
//     byte takes very few values;
//   - anything else, or fewer than minSamplePackets sampled, is unknown.
func (s *flowSample) packetClass(pt uint8) string {
	if s == nil || s.packets < minSamplePackets {
		return report.FlowUnknown
	}
	n := s.packets
	if s.dups*20 >= n {
		return report.FlowRTP
	}
	e := s.entropy()
	if e < plainEntropy {
		return report.FlowRTP
	}
	if pt == 0 || pt == 8 {
		switch {
		case e >= encryptedEntropy && s.g711Tag*10 >= 9*n:
			return report.FlowSRTP
		case s.g711Plain*10 >= 9*n:
			return report.FlowRTP
		}
		return report.FlowUnknown
	}
	// Distinct values expected among n uniformly random bytes.
	uniform := 256 * (1 - math.Pow(1-1.0/256, float64(min(n, sampleFlowPackets))))
	switch {
	case e >= encryptedEntropy && float64(s.distinctFirst()) >= 0.7*uniform:
		return report.FlowSRTP
	case s.distinctFirst() <= 8:
		return report.FlowRTP
	}
	return report.FlowUnknown
}

// packetClass is the flow's class from its packets.
func (f *mediaFlow) packetClass() string {
	if f.pclass != "" {
		return f.pclass
	}
	return f.s.packetClass(f.pt)
}

// retire lists a flow that went idle (or the capture ended) and frees its
// sample; dialogs and TLS connections that hold it keep its counters and
// class.
func (a *analyzer) retire(f *mediaFlow) {
	delete(a.flows, f.key)
	f.pclass = f.s.packetClass(f.pt)
	if f.s != nil {
		f.s = nil
		a.sampled--
	}
	fl, ok := f.report(a.pseudo)
	switch {
	case !ok:
	case len(a.flowReports) >= MaxListed:
		a.omitted++
	default:
		a.flowReports = append(a.flowReports, fl)
	}
}

// class returns the flow's class and how it was told.
func (f *mediaFlow) class() (class, by string) {
	if f.ref != nil {
		if f.ref.secure {
			return report.FlowSRTP, "sdp"
		}
		return report.FlowRTP, "sdp"
	}
	return f.packetClass(), "packets"
}

// report gives the flow's Capture entry, ok false for a flow that never
// looked like media.
func (f *mediaFlow) report(p *compliance.Pseudonymizer) (report.Flow, bool) {
	if !f.media {
		return report.Flow{}, false
	}
	class, by := f.class()
	fl := report.Flow{Src: f.key.src.String(), Dst: f.key.dst.String(), Class: class, By: by,
		Packets: f.packets, Bytes: f.bytes, SSRC: f.ssrc, PayloadType: f.pt,
		PacketClass: f.packetClass()}
	if f.ref != nil {
		fl.CallID = p.CallID(f.ref.d.callID)
	}
	return fl, true
}

// flowsBetween counts the flows no SDP named between a TLS connection's two
// hosts that started while it was open, by their class from packets.
func (a *analyzer) flowsBetween(c *tcpConn) (plain, secure int) {
	for _, f := range a.byHosts[hostPair(c.client, c.server)] {
		if !f.media || f.ref != nil || f.first.Before(c.first) || f.first.After(c.last) {
			continue
		}
		switch f.packetClass() {
		case report.FlowRTP:
			plain++
		case report.FlowSRTP:
			secure++
		}
	}
	return plain, secure
}

// hostPair names the two hosts of a flow or connection, in either order.
func hostPair(x, y netip.AddrPort) [2]netip.Addr {
	a, b := x.Addr().Unmap(), y.Addr().Unmap()
	if b.Less(a) {
		a, b = b, a
	}
	return [2]netip.Addr{a, b}
}
