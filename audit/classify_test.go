package audit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
)

// pcmu encodes a linear sample as G.711 mu-law (ITU-T G.711).
func pcmu(s int16) byte {
	const bias, clip = 0x84, 32635
	sign := byte(0)
	v := int(s)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}

// payloads makes n packets of 20 ms of a signal, in clear or encrypted
// with AES-CTR plus a 10-byte tag (what SRTP's AES_CM_128_HMAC_SHA1_80
// looks like on the wire).
func payloads(n int, signal func(i int) int16, encrypt bool, frame int) [][]byte {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{7}, 16))
	var out [][]byte
	k := 0
	for p := range n {
		b := make([]byte, frame)
		for i := range b {
			b[i] = pcmu(signal(k))
			k++
		}
		if encrypt {
			iv := make([]byte, 16)
			binary.BigEndian.PutUint32(iv[10:], uint32(p))
			cipher.NewCTR(block, iv).XORKeyStream(b, b)
			tag := make([]byte, 10)
			for i := range tag {
				tag[i] = byte(rand.IntN(256))
			}
			b = append(b, tag...)
		}
		out = append(out, b)
	}
	return out
}

func TestPacketClass(t *testing.T) {
	tone := func(i int) int16 { return int16(8000 * math.Sin(2*math.Pi*440*float64(i)/8000)) }
	speech := func(i int) int16 { return int16(rand.NormFloat64() * 3000 * (1 + math.Sin(float64(i)/900))) }
	silence := func(int) int16 { return int16(rand.IntN(3) - 1) }
	random := func(n int) [][]byte {
		var out [][]byte
		for range n {
			b := make([]byte, 60+rand.IntN(40))
			for i := range b {
				b[i] = byte(rand.IntN(256))
			}
			out = append(out, b)
		}
		return out
	}
	opus := func(n int) [][]byte { // a TOC byte that repeats, then compressed (random-looking) bytes
		out := random(n)
		for _, b := range out {
			b[0] = 0x78
		}
		return out
	}
	for _, c := range []struct {
		name string
		pt   uint8
		pkts [][]byte
		want string
	}{
		{"pcmu tone", 0, payloads(100, tone, false, 160), report.FlowRTP},
		{"pcmu speech", 0, payloads(100, speech, false, 160), report.FlowRTP},
		{"pcmu silence", 0, payloads(100, silence, false, 160), report.FlowRTP},
		{"pcmu tone srtp", 0, payloads(100, tone, true, 160), report.FlowSRTP},
		{"pcmu speech srtp", 0, payloads(100, speech, true, 160), report.FlowSRTP},
		{"pcma 30ms srtp", 8, payloads(100, speech, true, 240), report.FlowSRTP},
		{"opus clear", 111, opus(100), report.FlowRTP},
		{"opus srtp", 111, random(100), report.FlowSRTP},
		{"too few", 0, payloads(5, tone, true, 160), report.FlowUnknown},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := new(flowSample)
			for _, p := range c.pkts {
				s.add(c.pt, p)
			}
			if got := s.packetClass(c.pt); got != c.want {
				t.Errorf("class %s, want %s (entropy %.2f, dups %d, first bytes %d)", got, c.want, s.entropy(), s.dups, s.distinctFirst())
			}
		})
	}
}

// TestTCPReassembly builds a SIP-over-TCP capture whose INVITE is split
// over three segments sent out of order, with a retransmission, and two
// messages (200 and BYE) in one segment.
func TestTCPReassembly(t *testing.T) {
	var out bytes.Buffer
	w := pcapgo.NewWriter(&out)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	n := 0
	seg := func(fromCaller bool, seq uint32, syn bool, payload string) {
		n++
		src, dst, sp, dp := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2), 40000, 5060
		if !fromCaller {
			src, dst, sp, dp = dst, src, dp, sp
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src, DstIP: dst, Protocol: layers.IPProtocolTCP}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, SYN: syn, ACK: !syn || !fromCaller, Window: 1000}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload))
		b := buf.Bytes()
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(n) * 100 * time.Millisecond), CaptureLength: len(b), Length: len(b)}, b)
	}
	body := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n"
	invite := "INVITE sip:bob@10.0.0.2;transport=tcp SIP/2.0\r\nv: SIP/2.0/TCP 10.0.0.1:40000\r\nf: <sip:alice@10.0.0.1>;tag=1\r\nt: <sip:bob@10.0.0.2>\r\ni: tcp-call\r\nCSeq: 1 INVITE\r\nc: application/sdp\r\nl: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	ok := "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 10.0.0.1:40000\r\nFrom: <sip:alice@10.0.0.1>;tag=1\r\nTo: <sip:bob@10.0.0.2>;tag=2\r\nCall-ID: tcp-call\r\nCSeq: 1 INVITE\r\nServer: TestPBX\r\nContent-Type: application/sdp\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	bye := "BYE sip:alice@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2\r\nFrom: <sip:bob@10.0.0.2>;tag=2\r\nTo: <sip:alice@10.0.0.1>;tag=1\r\nCall-ID: tcp-call\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
	const cs, ss = 1000, 5000
	seg(true, cs, true, "")
	seg(false, ss, true, "")
	a, b := len(invite)/3, 2*len(invite)/3
	seg(true, cs+1, false, invite[:a])
	seg(true, uint32(cs+1+b), false, invite[b:])
	seg(true, cs+1, false, invite[:a]) // retransmission
	seg(true, uint32(cs+1+a), false, invite[a:b])
	seg(false, ss+1, false, "\r\n\r\n"+ok+bye) // keep-alive, then two messages
	p := filepath.Join(t.TempDir(), "tcp.pcap")
	os.WriteFile(p, out.Bytes(), 0o600)
	recs, src, c, err := analyze(t, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs2 := calls(recs)
	if len(cs2) != 1 || c.Dialogs != 1 {
		t.Fatalf("calls %+v notes %v", recs, src.Notes)
	}
	call := cs2[0]
	l := call.Legs[0]
	if call.Disposition != compliance.DispositionAnswered || call.EndReason != "bye from b" || l.Transport != "tcp" ||
		l.Remote != "10.0.0.1:40000" || l.Media == nil || l.Media.Profile != "RTP/SAVP" {
		t.Errorf("call %+v leg %+v", call, l)
	}
}

// Idle flows are listed and freed as the capture goes on, so a long
// capture holds only the flows still open.
func TestFlowsRetireWhenIdle(t *testing.T) {
	a := newAnalyzer(Options{}, nil)
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	dst := netip.MustParseAddrPort("10.0.0.2:4000")
	for call := range 50 {
		src := netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(5000+2*call))
		start := t0.Add(time.Duration(call) * 2 * time.Minute)
		for i := range 20 {
			pkt := make([]byte, 12+160)
			pkt[0], pkt[3], pkt[11] = 0x80, byte(i), byte(call)
			a.media(start.Add(time.Duration(i)*20*time.Millisecond), src, dst, pkt)
		}
		a.sweep(start.Add(time.Second))
		if len(a.flows) > 1 {
			t.Fatalf("call %d: %d flows held", call, len(a.flows))
		}
	}
	a.finish()
	c := a.capture()
	if len(c.Flows) != 50 || a.sampled != 0 {
		t.Errorf("%d flows listed, %d samples held", len(c.Flows), a.sampled)
	}
	for _, f := range c.Flows {
		if f.Class != report.FlowRTP || f.By != "packets" || f.Packets != 20 {
			t.Errorf("flow %+v", f)
		}
	}
}
