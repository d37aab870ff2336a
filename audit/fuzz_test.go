package audit

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/parapet-sbc/parapet/compliance"
)

func FuzzParseSIP(f *testing.F) {
	f.Add([]byte("INVITE sip:bob@h SIP/2.0\r\ni: x\r\nCSeq: 1 INVITE\r\nl: 3\r\n\r\nv=0"), true)
	f.Add([]byte("SIP/2.0 200 OK\nCall-ID: y\nCSeq: 2 BYE\n\n"), false)
	f.Add([]byte("BYE sip:a SIP/2.0\r\nCall-ID: z\r\n folded\r\nCSeq: 9 BYE\r\nContent-Length: 99999999\r\n\r\n"), true)
	f.Add([]byte(ngrepTrace), false)
	f.Fuzz(func(t *testing.T, b []byte, stream bool) {
		m, n, err := parseSIP(b, stream)
		if err != nil {
			return
		}
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if m.CallID == "" || m.CSeqMethod == "" || len(m.Body) > maxSIPBody {
			t.Fatalf("accepted %+v", m)
		}
		uriUser(m.From)
		viaTransport(m.Via)
	})
}

// recordTLS captures the bytes of real TLS handshakes for seeds: a
// client's first flight and the server's reply, through a loopback pipe.
func recordTLS(f *testing.F, clientCfg *tls.Config) (client, server []byte) {
	f.Helper()
	cert, key := testCert(f)
	c1, c2 := net.Pipe()
	var cbuf, sbuf bytes.Buffer
	srv := tls.Server(&tee{Conn: c2, w: &sbuf}, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert}, PrivateKey: key}}, MinVersion: tls.VersionTLS12})
	cl := tls.Client(&tee{Conn: c1, w: &cbuf}, clientCfg)
	done := make(chan struct{})
	go func() { srv.Handshake(); c2.Close(); close(done) }()
	cl.SetDeadline(time.Now().Add(2 * time.Second))
	cl.Handshake()
	c1.Close()
	<-done
	return cbuf.Bytes(), sbuf.Bytes()
}

// tee records what a connection writes.
type tee struct {
	net.Conn
	w *bytes.Buffer
}

func (t *tee) Write(p []byte) (int, error) { t.w.Write(p); return t.Conn.Write(p) }

func FuzzTLSHalf(f *testing.F) {
	for _, cfg := range []*tls.Config{
		{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ServerName: "a.test"},
		{InsecureSkipVerify: true},
		{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10},
	} {
		c, s := recordTLS(f, cfg)
		f.Add(c, s, 7)
	}
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0}, []byte{21, 3, 3, 0, 2, 2, 70}, 1)
	f.Fuzz(func(t *testing.T, client, server []byte, chunk int) {
		conn := &tcpConn{}
		tc := newTLSConn(conn, 1)
		if chunk <= 0 || chunk > 4096 {
			chunk = 4096
		}
		for i := 0; i < len(client) || i < len(server); i += chunk {
			if i < len(client) {
				tc.feed(0, client[i:min(i+chunk, len(client))])
			}
			if i < len(server) {
				tc.feed(1, server[i:min(i+chunk, len(server))])
			}
		}
		tc.handshake()
		tc.failure()
		tc.certFacts()
		for _, h := range tc.half {
			if len(h.buf) > maxRecord+5+len(client)+len(server) || len(h.hs) > maxHandshakeMsg+4+maxRecord {
				t.Fatalf("buffers grew: %d %d", len(h.buf), len(h.hs))
			}
		}
		parseClientHello(client)
		parseServerHello(server)
		parseCertificates(server)
	})
}

// seedCapture writes a small pcap of a SIP INVITE over UDP, RTP packets
// and a TLS ClientHello over TCP.
func seedCapture(tb testing.TB, ng bool) []byte {
	tb.Helper()
	var out bytes.Buffer
	type writer interface {
		WritePacket(gopacket.CaptureInfo, []byte) error
	}
	var w writer
	if ng {
		nw, err := pcapgo.NewNgWriter(&out, layers.LinkTypeEthernet)
		if err != nil {
			tb.Fatal(err)
		}
		defer nw.Flush()
		w = nw
	} else {
		pw := pcapgo.NewWriter(&out)
		pw.WriteFileHeader(65535, layers.LinkTypeEthernet)
		w = pw
	}
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	pkt := func(i int, tcp bool, sport, dport int, payload []byte) {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2), Protocol: layers.IPProtocolUDP}
		var l4 gopacket.SerializableLayer
		if tcp {
			ip.Protocol = layers.IPProtocolTCP
			t := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1000, ACK: true, PSH: true, Window: 100}
			t.SetNetworkLayerForChecksum(ip)
			l4 = t
		} else {
			u := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
			u.SetNetworkLayerForChecksum(ip)
			l4 = u
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload(payload)); err != nil {
			tb.Fatal(err)
		}
		b := buf.Bytes()
		w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond), CaptureLength: len(b), Length: len(b)}, b)
	}
	invite := "INVITE sip:bob@10.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:bob@h>\r\nCall-ID: seed\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\n\r\n" +
		"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
	pkt(0, false, 5060, 5060, []byte(invite))
	for i := range 12 {
		rtp := make([]byte, 12+160)
		rtp[0], rtp[1], rtp[3], rtp[11] = 0x80, 0, byte(i), 7
		pkt(i+1, false, 5000, 4000, rtp)
	}
	ch, _ := recordTLSBytes(tb)
	pkt(20, true, 40000, 5061, ch)
	if nw, ok := w.(*pcapgo.NgWriter); ok {
		nw.Flush()
	}
	return out.Bytes()
}

// recordTLSBytes is a fixed ClientHello-like record for seeds.
func recordTLSBytes(testing.TB) ([]byte, []byte) {
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...)
	body = append(body, 0, 0, 2, 0x13, 0x01, 1, 0)
	msg := append([]byte{1, 0, 0, byte(len(body))}, body...)
	return append([]byte{22, 3, 1, 0, byte(len(msg))}, msg...), nil
}

func FuzzAnalyzeCapture(f *testing.F) {
	f.Add(seedCapture(f, false))
	f.Add(seedCapture(f, true))
	f.Add([]byte(ngrepTrace))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "fuzz.cap")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		n := 0
		src, c, _ := Analyze(p, Options{Pseudonymizer: compliance.NewPseudonymizer([]byte("k"))}, func(r *compliance.Record) {
			n++
			if r.Seq != uint64(n) {
				t.Fatalf("seq %d, want %d", r.Seq, n)
			}
		})
		if src.Records != n || (c != nil && len(c.Flows) > MaxListed) {
			t.Fatalf("source %+v, %d records", src, n)
		}
	})
}

func TestSeedCapture(t *testing.T) {
	for _, ng := range []bool{false, true} {
		p := filepath.Join(t.TempDir(), "seed")
		os.WriteFile(p, seedCapture(t, ng), 0o600)
		recs, _, c, err := analyze(t, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if c.Packets != 14 || c.Dialogs != 1 || len(calls(recs)) != 1 || len(c.Flows) != 1 || c.Flows[0].By != "sdp" {
			t.Errorf("ng %v: %+v, %+v", ng, c, recs)
		}
		if cs := calls(recs); cs[0].Disposition != compliance.DispositionUnobserved || cs[0].Legs[0].Media.PacketsIn != 12 {
			t.Errorf("ng %v: call %+v media %+v", ng, cs[0], cs[0].Legs[0].Media)
		}
	}
}
