package b2bua

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

func stunRequest(length int) []byte {
	req := make([]byte, 20+length)
	binary.BigEndian.PutUint16(req[0:2], stunBindingRequest)
	binary.BigEndian.PutUint16(req[2:4], uint16(length))
	binary.BigEndian.PutUint32(req[4:8], stunMagic)
	copy(req[8:20], "0123456789ab")
	return req
}

func TestIsSTUNBinding(t *testing.T) {
	bad := stunRequest(0)
	bad[7] ^= 1
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"binding request", stunRequest(0), true},
		{"with attributes", stunRequest(8), true},
		{"wrong cookie", bad, false},
		{"length that does not fit", stunRequest(8)[:24], false},
		{"short", stunRequest(0)[:19], false},
		{"SIP", []byte("OPTIONS sip:x SIP/2.0\r\n\r\n"), false},
		{"CRLF ping", []byte("\r\n\r\n"), false},
	} {
		if got := isSTUNBinding(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The Binding response names the source in XOR-MAPPED-ADDRESS (RFC 5389
// section 15.2: the port with the cookie's top half, the address with the
// cookie and, for IPv6, the transaction ID) and ends in a FINGERPRINT.
func TestSTUNBindingResponse(t *testing.T) {
	for _, src := range []string{"203.0.113.7:40001", "[2001:db8::7]:5062"} {
		ap := netip.MustParseAddrPort(src)
		req := stunRequest(0)
		res := stunBindingResponse(req, ap)
		if binary.BigEndian.Uint16(res[0:2]) != stunBindingSuccess || int(binary.BigEndian.Uint16(res[2:4])) != len(res)-20 ||
			string(res[4:20]) != string(req[4:20]) {
			t.Fatalf("%s: header % x", src, res[:20])
		}
		if binary.BigEndian.Uint16(res[20:22]) != stunXorMappedAddr {
			t.Fatalf("%s: first attribute % x", src, res[20:24])
		}
		n := int(binary.BigEndian.Uint16(res[22:24]))
		port := binary.BigEndian.Uint16(res[26:28]) ^ uint16(stunMagic>>16)
		ip := make([]byte, n-4)
		for i := range ip {
			ip[i] = res[28+i] ^ req[4+i]
		}
		got, _ := netip.AddrFromSlice(ip)
		if netip.AddrPortFrom(got, port) != ap {
			t.Errorf("XOR-MAPPED-ADDRESS %s, want %s", netip.AddrPortFrom(got, port), ap)
		}
		fp := res[len(res)-8:]
		if binary.BigEndian.Uint16(fp[0:2]) != stunFingerprint ||
			binary.BigEndian.Uint32(fp[4:8]) != crc32.ChecksumIEEE(res[:len(res)-8])^stunFingerprintXor {
			t.Errorf("%s: FINGERPRINT % x", src, fp)
		}
	}
}

// A REGISTER asks for outbound with +sip.instance and reg-id, from its
// first hop only; the binding is then the instance's, whatever connection.
func TestFlowKey(t *testing.T) {
	z := &zone{name: "staff"}
	sig := policy.SignalingFacts{Transport: policy.TransportUDP}
	for _, tc := range []struct {
		name, contact, via2 string
		outbound            bool
	}{
		{"outbound", `<sip:u@10.0.0.2>;+sip.instance="<urn:uuid:1>";reg-id=1`, "", true},
		{"behind another proxy", `<sip:u@10.0.0.2>;+sip.instance="<urn:uuid:1>";reg-id=1`, "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp", false},
		{"instance without reg-id", `<sip:u@10.0.0.2>;+sip.instance="<urn:uuid:1>"`, "", false},
		{"plain", `<sip:u@10.0.0.2>`, "", false},
	} {
		raw := "REGISTER sip:pbx.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKa;rport\r\n"
		if tc.via2 != "" {
			raw += "Via: " + tc.via2 + "\r\n"
		}
		raw += "From: <sip:u@pbx.test>;tag=1\r\nTo: <sip:u@pbx.test>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContact: " + tc.contact +
			"\r\nContent-Length: 0\r\n\r\n"
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetSource("198.51.100.4:3000")
		key, ob := flowKey(z, req, sig, "u@pbx.test")
		if ob != tc.outbound || ob != !strings.Contains(key, "198.51.100.4:3000") {
			t.Errorf("%s: key %q outbound %v", tc.name, key, ob)
		}
	}
}

// A zone's registrar (udp_keepalive included) is set up at start: a
// reload that changes it needs a restart.
func TestRegistrarChangeNeedsRestart(t *testing.T) {
	zoneWith := func(keepAlive time.Duration) Config {
		return Config{Zones: []topology.Zone{{Policy: policy.Zone{Name: "staff"},
			Registrar: &topology.Registrar{Zone: "pbx", UDPKeepAlive: keepAlive}}}}
	}
	old, same, changed := zoneWith(25*time.Second), zoneWith(25*time.Second), zoneWith(40*time.Second)
	if err := restartNeeded(&old, &same); err != nil {
		t.Errorf("same registrar: %v", err)
	}
	if err := restartNeeded(&old, &changed); !errors.Is(err, errRestart) || !strings.Contains(err.Error(), "registrar") {
		t.Errorf("changed registrar: %v", err)
	}
}
