package media

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func FuzzParseSDP(f *testing.F) {
	for _, b := range sdpSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(secretSDP))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseSDP(body)
		if err != nil {
			for _, k := range inputKeys(body) {
				if strings.Contains(err.Error(), k) {
					t.Fatalf("error %q carries key %q", err, k)
				}
			}
			return
		}
		checkDescription(t, d)
	})
}

// checkDescription asserts what ParseSDP promises of a description it returns.
func checkDescription(t *testing.T, d *Description) {
	t.Helper()
	if len(d.Streams) < 1 || len(d.Streams) > maxStreams {
		t.Fatalf("%d streams", len(d.Streams))
	}
	_ = d.String()
	for i, st := range d.Streams {
		if st.Index != i || st.Port < 0 || st.Port > 65535 {
			t.Fatalf("stream %d: index %d port %d", i, st.Index, st.Port)
		}
		if st.Direction != "" && !isDirection(st.Direction) {
			t.Fatalf("stream %d: direction %q", i, st.Direction)
		}
		if st.Port == 0 {
			continue
		}
		if !st.Addr.IsValid() || st.Addr.Zone() != "" || len(st.Formats) == 0 || st.RTCPPort < 1 || st.RTCPPort > 65535 {
			t.Fatalf("active stream %d: %+v", i, st)
		}
		for _, c := range st.Crypto {
			if n, ok := KeyLen(c.Suite); ok && c.Problem == "" && len(c.Key) != n {
				t.Fatalf("stream %d: %v has %d key bytes and no problem", i, c, len(c.Key))
			}
		}
	}
}

// fuzzPlans derives a plan for every stream, varying what it can: SRTP or
// not, suites, addresses, RTCP ports, mux and direction.
func fuzzPlans(d *Description) []StreamPlan {
	suites := []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"}
	plans := make([]StreamPlan, len(d.Streams))
	for i, st := range d.Streams {
		p := StreamPlan{Active: st.Port != 0, Proto: st.Proto, RTCPMux: st.RTCPMux, Direction: st.Direction}
		addr := relayV4
		if i%2 == 1 {
			addr = netip.MustParseAddr("2001:db8::7")
		}
		p.Local = Endpoint{Addr: addr, Port: 20000 + 2*i, RTCPPort: []int{0, 20001 + 2*i, 21000 + i}[i%3]}
		if slices.Contains(strings.Split(st.Proto, "/"), "RTP") {
			switch i % 3 {
			case 0:
				p.Proto = "RTP/SAVP"
				p.Crypto = []Crypto{testCrypto(1, suites[i%4], byte(i)), testCrypto(2, suites[(i+1)%4], byte(i+100))}
			case 1:
				p.Proto = "RTP/AVPF"
			default:
				p.Proto = "UDP/TLS/RTP/SAVPF"
				p.Crypto = []Crypto{testCrypto(7, suites[(i+2)%4], byte(i+50))}
			}
		}
		if i%4 == 3 {
			p.Direction = "inactive"
		}
		plans[i] = p
	}
	return plans
}

func FuzzBuildSDP(f *testing.F) {
	for _, b := range sdpSeeds(f) {
		f.Add(b)
	}
	f.Add([]byte(secretSDP))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := ParseSDP(body)
		if err != nil {
			return
		}
		plans := fuzzPlans(d)
		out, err := BuildSDP(d, Origin{Username: "parapet", Session: 1, Version: 2, Addr: relayV4}, plans)
		if err != nil {
			// The only refusal a plan derived from a parsed body may meet:
			// src text that cannot be dropped holds a src key.
			if !strings.Contains(err.Error(), "key material") {
				t.Fatalf("BuildSDP: %v", err)
			}
			return
		}
		back, err := ParseSDP(out)
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, out)
		}
		checkDescription(t, back)
		if len(back.Streams) != len(d.Streams) {
			t.Fatalf("%d streams out, %d in", len(back.Streams), len(d.Streams))
		}
		for i, st := range back.Streams {
			p := plans[i]
			wantPort := 0
			if p.Active {
				wantPort = p.Local.Port
			}
			if st.Port != wantPort || (p.Active && (st.Addr != p.Local.Addr || st.Proto != p.Proto || len(st.Crypto) != len(p.Crypto))) {
				t.Fatalf("stream %d: %+v for plan %+v", i, st, p)
			}
		}
		text := string(out)
		for _, k := range inputKeys(body) {
			if strings.Contains(text, k) {
				t.Fatalf("output carries input key %q:\n%s", k, out)
			}
		}
	})
}
