package media

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// dtlsSeeds are bodies with DTLS-SRTP attributes at both levels, usable and
// not: several hash functions, either case, wrong lengths, md5, bad setup
// roles.
func dtlsSeeds() [][]byte {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	line := func(hash string, n int, seed byte) string {
		return "a=fingerprint:" + testFingerprint(hash, n, seed).String() + "\r\n"
	}
	return [][]byte{
		[]byte(dtlsSource),
		[]byte(head + line("sha-256", 32, 1) + "a=setup:actpass\r\n" +
			"m=audio 4000 UDP/TLS/RTP/SAVPF 0 8\r\na=rtcp-mux\r\n" + line("sha-1", 20, 2) + line("SHA-512", 64, 3) + "a=setup:passive\r\n" +
			"m=video 4002 UDP/TLS/RTP/SAVP 96\r\na=setup:bogus\r\n" +
			"m=audio 4004 RTP/AVP 0\r\na=fingerprint:md5 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99\r\na=setup:HOLDCONN\r\n"),
		[]byte(head + "m=audio 4000 UDP/TLS/RTP/SAVP 0\r\na=fingerprint:sha-256 aa:bb\r\na=fingerprint:sha-224 " +
			strings.ToLower(testFingerprint("sha-224", 28, 4).String()[8:]) + "\r\na=fingerprint:sha-384\r\na=setup:active\r\n"),
	}
}

func FuzzParseSDP(f *testing.F) {
	for _, b := range sdpSeeds(f) {
		f.Add(b)
	}
	for _, b := range dtlsSeeds() {
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
		if st.Setup != "" && setupRole(st.Setup) != st.Setup {
			t.Fatalf("stream %d: setup %q", i, st.Setup)
		}
		if len(st.Fingerprints) > maxFingerprints || (!st.DTLS && (len(st.Fingerprints) > 0 || st.FingerprintProblem != "")) ||
			strings.ContainsAny(st.FingerprintProblem, "\r\n") {
			t.Fatalf("stream %d: dtls %v, %d fingerprints, problem %q", i, st.DTLS, len(st.Fingerprints), st.FingerprintProblem)
		}
		for _, fp := range st.Fingerprints {
			if n, ok := fingerprintLen(fp.Hash); !ok || len(fp.Value) != n {
				t.Fatalf("stream %d: fingerprint %v", i, fp)
			}
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
// not, SDES suites or DTLS (for a source stream with a fingerprint), setup
// roles, hash functions, addresses, RTCP ports, mux and direction.
func fuzzPlans(d *Description) []StreamPlan {
	suites := []string{"AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM", "AEAD_AES_256_GCM"}
	hashes := []struct {
		name string
		n    int
	}{{"sha-256", 32}, {"sha-1", 20}, {"SHA-384", 48}, {"sha-512", 64}, {"sha-224", 28}}
	setups := []string{"actpass", "passive", "active"}
	plans := make([]StreamPlan, len(d.Streams))
	for i, st := range d.Streams {
		p := StreamPlan{Active: st.Port != 0, Proto: st.Proto, RTCPMux: st.RTCPMux, Direction: st.Direction}
		addr := relayV4
		if i%2 == 1 {
			addr = netip.MustParseAddr("2001:db8::7")
		}
		p.Local = Endpoint{Addr: addr, Port: 20000 + 2*i, RTCPPort: []int{0, 20001 + 2*i, 21000 + i}[i%3]}
		if slices.Contains(strings.Split(st.Proto, "/"), "RTP") {
			switch {
			case st.DTLS:
				// Answer DTLS with DTLS, with parapet's own fingerprint.
				h := hashes[i%len(hashes)]
				p.Proto = []string{"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP"}[i%2]
				p.DTLS = &DTLSPlan{Fingerprint: testFingerprint(h.name, h.n, byte(i)), Setup: setups[i%len(setups)]}
			case i%3 == 0:
				p.Proto = "RTP/SAVP"
				p.Crypto = []Crypto{testCrypto(1, suites[i%4], byte(i)), testCrypto(2, suites[(i+1)%4], byte(i+100))}
			case i%3 == 1:
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
	for _, b := range dtlsSeeds() {
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
			// DTLS attributes are parapet's, on active DTLS streams only:
			// the source's, at either level, are never copied.
			if p.Active && p.DTLS != nil {
				want := Fingerprint{Hash: strings.ToLower(p.DTLS.Fingerprint.Hash), Value: p.DTLS.Fingerprint.Value}
				if !st.DTLS || st.Setup != p.DTLS.Setup || st.FingerprintProblem != "" || !sameFingerprints(st.Fingerprints, []Fingerprint{want}) {
					t.Fatalf("stream %d: setup %q fingerprints %v problem %q for plan %v", i, st.Setup, st.Fingerprints, st.FingerprintProblem, p.DTLS)
				}
			} else if st.DTLS || st.Setup != "" {
				t.Fatalf("stream %d: DTLS attributes without a DTLS plan:\n%s", i, out)
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

func FuzzParseFingerprint(f *testing.F) {
	for _, b := range dtlsSeeds() {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), "a=fingerprint:"); ok {
				f.Add(v)
			}
		}
	}
	f.Fuzz(func(t *testing.T, value string) {
		fp, err := parseFingerprint(value)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %q carries a line break", err)
			}
			return
		}
		if n, ok := fingerprintLen(fp.Hash); !ok || len(fp.Value) != n {
			t.Fatalf("%q reads as %v", value, fp)
		}
		// What is read is written back canonically, and reads back the same.
		back, err := parseFingerprint(fp.String())
		if err != nil || !sameFingerprints([]Fingerprint{back}, []Fingerprint{fp}) {
			t.Fatalf("%q reads back as %v, %v", fp, back, err)
		}
		if _, _, err := planDTLS(DTLSPlan{Fingerprint: fp, Setup: "actpass"}); err != nil {
			t.Fatalf("planDTLS(%v): %v", fp, err)
		}
	})
}
