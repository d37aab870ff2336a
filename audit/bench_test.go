package audit

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// BenchmarkAnalyzeRTP measures reading a capture of many RTP flows.
func BenchmarkAnalyzeRTP(b *testing.B) {
	var out bytes.Buffer
	w := pcapgo.NewWriter(&out)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	const flows, perFlow = 200, 250
	for i := range perFlow {
		for f := range flows {
			eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{0, 1, 2, 3, 4, 5}, DstMAC: net.HardwareAddr{0, 1, 2, 3, 4, 6}, EthernetType: layers.EthernetTypeIPv4}
			ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IPv4(10, 0, 0, 1), DstIP: net.IPv4(10, 0, 0, 2), Protocol: layers.IPProtocolUDP}
			u := &layers.UDP{SrcPort: layers.UDPPort(10000 + 2*f), DstPort: 4000}
			u.SetNetworkLayerForChecksum(ip)
			rtp := make([]byte, 12+160)
			rtp[0], rtp[2], rtp[3], rtp[11] = 0x80, byte(i>>8), byte(i), byte(f)
			rtp[20] = byte(i)
			buf := gopacket.NewSerializeBuffer()
			gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, eth, ip, u, gopacket.Payload(rtp))
			pb := buf.Bytes()
			w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(time.Duration(i) * 20 * time.Millisecond), CaptureLength: len(pb), Length: len(pb)}, pb)
		}
	}
	p := filepath.Join(b.TempDir(), "rtp.pcap")
	os.WriteFile(p, out.Bytes(), 0o600)
	b.SetBytes(int64(out.Len()))
	b.ResetTimer()
	for range b.N {
		if _, c, err := Analyze(p, Options{}, nil); err != nil || len(c.Flows) != flows {
			b.Fatalf("%v %d", err, len(c.Flows))
		}
	}
}
