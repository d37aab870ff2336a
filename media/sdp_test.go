package media

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// -update rewrites the golden files under testdata/sdp.
var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata")

// testCrypto is a Crypto with a deterministic key, so golden files are stable.
func testCrypto(tag int, suite string, seed byte) Crypto {
	n, ok := KeyLen(suite)
	if !ok {
		panic("test suite not supported: " + suite)
	}
	key := make([]byte, n)
	for i := range key {
		key[i] = seed + byte(i)*13
	}
	return Crypto{Tag: tag, Suite: suite, Key: key}
}

var (
	relayV4  = netip.MustParseAddr("192.0.2.10")
	relayV4b = netip.MustParseAddr("192.0.2.11")
	relayV6  = netip.MustParseAddr("2001:db8::10")
)

func ep(addr netip.Addr, port, rtcp int) Endpoint {
	return Endpoint{Addr: addr, Port: port, RTCPPort: rtcp}
}

// goldenCases pairs each input in testdata/sdp with the plans BuildSDP is
// given for it.
var goldenCases = []struct {
	name  string
	plans []StreamPlan
}{
	{
		// Upgrade: a plain PBX-side offer goes out as SRTP.
		name: "baresip-avp",
		plans: []StreamPlan{{
			Active: true, Proto: "RTP/SAVP", Local: ep(relayV4, 20000, 20001),
			Crypto: []Crypto{testCrypto(1, "AEAD_AES_256_GCM", 1), testCrypto(2, "AES_CM_128_HMAC_SHA1_80", 2)},
		}},
	},
	{
		// Toward an internal zone that allows plain RTP.
		name:  "baresip-srtp-mand",
		plans: []StreamPlan{{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 20002, 20003)}},
	},
	{
		// WebRTC-ish: audio muxed with feedback, video on another address with
		// a separate RTCP port and no feedback, the data channel refused.
		name: "webrtc",
		plans: []StreamPlan{
			{Active: true, Proto: "RTP/SAVPF", Local: ep(relayV4, 20004, 20004), RTCPMux: true, Crypto: []Crypto{testCrypto(1, "AEAD_AES_128_GCM", 3)}},
			{Active: true, Proto: "RTP/SAVP", Local: ep(relayV4b, 20006, 20009), Crypto: []Crypto{testCrypto(1, "AES_CM_128_HMAC_SHA1_80", 4)}},
			{Active: false},
		},
	},
	{
		name: "asterisk",
		plans: []StreamPlan{{
			Active: true, Proto: "RTP/SAVP", Local: ep(relayV4, 20010, 20011),
			Crypto: []Crypto{testCrypto(1, "AES_CM_128_HMAC_SHA1_32", 5), func() Crypto {
				c := testCrypto(2, "AES_CM_128_HMAC_SHA1_80", 6)
				c.Lifetime, c.Params = "2^31", []string{"KDR=0"}
				return c
			}()},
		}},
	},
	{
		// Downgrade toward an internal leg, with the stream put on hold.
		name:  "savp-4crypto",
		plans: []StreamPlan{{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 20012, 20013), Direction: "sendonly"}},
	},
	{
		name: "audio-video",
		plans: []StreamPlan{
			{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 20014, 20015), Direction: "sendonly"},
			{Active: true, Proto: "RTP/SAVPF", Local: ep(relayV6, 20016, 20017), Crypto: []Crypto{testCrypto(9, "AEAD_AES_256_GCM", 7)}},
		},
	},
	{
		// Fax: audio refused, T.38 relayed.
		name: "t38",
		plans: []StreamPlan{
			{Active: false},
			{Active: true, Proto: "udptl", Local: ep(relayV4, 20018, 0)},
		},
	},
}

func readInput(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sdp", name+".sdp"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// dump writes everything ParseSDP extracted, keys redacted.
func dump(d *Description) string {
	var b strings.Builder
	fmt.Fprintf(&b, "origin %s %d %d\n", d.OriginUser, d.OriginSession, d.OriginVersion)
	for _, st := range d.Streams {
		fmt.Fprintf(&b, "stream %d: %s port %d proto %s formats %v\n", st.Index, st.Media, st.Port, st.Proto, st.Formats)
		fmt.Fprintf(&b, "  addr %v rtcp %d mux %v dtls %v direction %q\n", st.Addr, st.RTCPPort, st.RTCPMux, st.DTLS, st.Direction)
		for _, c := range st.Crypto {
			fmt.Fprintf(&b, "  crypto %v (key %d bytes)\n", c, len(c.Key))
		}
	}
	return b.String()
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestSDPGolden(t *testing.T) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "sdp", "*.sdp"))
	if len(inputs) != len(goldenCases) {
		t.Errorf("%d inputs in testdata/sdp, %d golden cases", len(inputs), len(goldenCases))
	}
	for i, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			in := readInput(t, tc.name)
			d, err := ParseSDP(crlf(in))
			if err != nil {
				t.Fatalf("ParseSDP: %v", err)
			}
			// LF-only bodies read the same.
			dLF, err := ParseSDP(in)
			if err != nil {
				t.Fatalf("ParseSDP (LF): %v", err)
			}
			if dump(dLF) != dump(d) {
				t.Errorf("LF body reads differently:\n%s\nvs\n%s", dump(dLF), dump(d))
			}
			checkGolden(t, filepath.Join("testdata", "sdp", tc.name+".parsed"), dump(d))

			origin := Origin{Username: "parapet", Session: uint64(7000 + i), Version: 1, Addr: relayV4}
			out, err := BuildSDP(d, origin, tc.plans)
			if err != nil {
				t.Fatalf("BuildSDP: %v", err)
			}
			if !bytes.HasSuffix(out, []byte("\r\n")) || bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
				t.Error("output lines do not all end in CRLF")
			}
			checkGolden(t, filepath.Join("testdata", "sdp", tc.name+".golden"), strings.ReplaceAll(string(out), "\r\n", "\n"))

			// The output reads back with the plan's transport.
			back, err := ParseSDP(out)
			if err != nil {
				t.Fatalf("ParseSDP(BuildSDP): %v", err)
			}
			if len(back.Streams) != len(d.Streams) {
				t.Fatalf("%d streams out, %d in", len(back.Streams), len(d.Streams))
			}
			for j, st := range back.Streams {
				p, src := tc.plans[j], d.Streams[j]
				if st.Media != src.Media || !slices.Equal(st.Formats, src.Formats) {
					t.Errorf("stream %d: %s %v, want %s %v", j, st.Media, st.Formats, src.Media, src.Formats)
				}
				if !p.Active {
					if st.Port != 0 || st.Proto != src.Proto {
						t.Errorf("stream %d: port %d proto %s, want 0 %s", j, st.Port, st.Proto, src.Proto)
					}
					continue
				}
				wantRTCP := p.Local.RTCPPort
				if wantRTCP == 0 || p.RTCPMux {
					wantRTCP = p.Local.Port + 1
				}
				if st.Port != p.Local.Port || st.Addr != p.Local.Addr || st.Proto != p.Proto || st.RTCPMux != p.RTCPMux || (!p.RTCPMux && st.RTCPPort != wantRTCP) {
					t.Errorf("stream %d reads back as %+v, plan %+v", j, st, p)
				}
				if len(st.Crypto) != len(p.Crypto) {
					t.Fatalf("stream %d: %d crypto lines, want %d", j, len(st.Crypto), len(p.Crypto))
				}
				for k, c := range st.Crypto {
					if c.Problem != "" || len(c.Unsafe) > 0 || !sameCrypto(c.Crypto, p.Crypto[k]) {
						t.Errorf("stream %d crypto %d reads back as %v", j, k, c)
					}
				}
				wantDir := p.Direction
				if wantDir == "" {
					wantDir = src.Direction
				}
				if st.Direction != wantDir {
					t.Errorf("stream %d direction %q, want %q", j, st.Direction, wantDir)
				}
				if st.DTLS {
					t.Errorf("stream %d carries a fingerprint", j)
				}
			}
			// Nothing of src's crypto leaks into the output.
			for _, st := range d.Streams {
				for _, c := range st.Crypto {
					if len(c.Key) > 0 && bytes.Contains(out, []byte(strings.TrimRight(c.Marshal()[strings.Index(c.Marshal(), "inline:")+7:], "="))) {
						t.Errorf("source key of %v in output", c)
					}
				}
			}
		})
	}
}

// secretSDP carries, in every place an SDP can, things that belong to the
// leg it came from: addresses, ports, names, ICE credentials, keys.
const secretSDP = `v=0
o=dr.house 998877665544 332211 IN IP4 172.16.5.4
s=Oncology ward 3 consult
i=Consult about patient MRN 12345678
u=http://intranet.hospital.example/patient/12345678
e=dr.house@hospital.example
p=+1 555 0100 222
c=IN IP4 10.99.88.77
b=AS:4321
t=0 0
k=clear:SessionKeyDoNotLeak0123456789
a=tool:SecretPBX 9.9.9
a=group:BUNDLE secretmid0 secretmid1
a=msid-semantic: WMS secretstream
a=ice-ufrag:UfragSecret9
a=ice-pwd:PwdSecretPwdSecretPwd0123
a=fingerprint:sha-256 DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF
a=setup:actpass
a=x-patient:John Q. Public
a=sendrecv
m=audio 49170 RTP/SAVPF 0 101
c=IN IP4 10.99.88.78
b=TIAS:64000
k=clear:MediaKeyDoNotLeak0123456789
a=rtcp:50001 IN IP4 198.51.100.23
a=candidate:1 1 udp 2130706431 203.0.113.77 49170 typ host
a=candidate:2 1 udp 1694498815 198.51.100.66 61000 typ srflx raddr 10.99.88.78 rport 49170
a=end-of-candidates
a=ice-ufrag:UfragMedia7
a=ice-pwd:MediaPwdSecretMediaPwd77
a=ice-options:trickle
a=fingerprint:sha-1 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01
a=setup:active
a=mid:secretmid0
a=msid:secretstream secrettrack
a=ssrc:31337 cname:nurse.station@10.0.0.99
a=ssrc-group:FID 31337 31338
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=rtcp-mux
a=rtcp-rsize
a=bundle-only
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:` + key30 + `|2^20
a=crypto:2 AEAD_AES_256_GCM inline:` + key44 + ` FEC_KEY=inline:` + key30b + `
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-fb:0 nack
a=ptime:20
a=x-room:ICU-4 bed 7
m=video 49180 RTP/AVP 31
a=rtpmap:31 H261/90000
a=sctp-port:5000
a=label:cam1
`

func TestBuildSDPHidesTopologyAndKeys(t *testing.T) {
	d, err := ParseSDP([]byte(secretSDP))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Streams) != 2 || !d.Streams[0].DTLS || len(d.Streams[0].Crypto) != 2 || d.Streams[0].RTCPPort != 50001 {
		t.Fatalf("unexpected parse:\n%s", dump(d))
	}
	plans := []StreamPlan{
		{Active: true, Proto: "RTP/SAVP", Local: ep(relayV4, 30000, 30001), Crypto: []Crypto{testCrypto(1, "AES_CM_128_HMAC_SHA1_80", 9)}},
		{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 30002, 30003)},
	}
	out, err := BuildSDP(d, Origin{Username: "parapet", Session: 42, Version: 3, Addr: relayV4}, plans)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	secrets := []string{
		"dr.house", "998877665544", "332211", "172.16.5.4", "Oncology", "12345678", "hospital.example",
		"555 0100", "10.99.88.77", "10.99.88.78", "4321", "64000", "SessionKeyDoNotLeak", "MediaKeyDoNotLeak",
		"SecretPBX", "secretmid", "secretstream", "secrettrack", "UfragSecret9", "PwdSecretPwdSecretPwd0123",
		"UfragMedia7", "MediaPwdSecretMediaPwd77", "DE:AD:BE:EF", "AB:CD:EF", "actpass", "active", "John",
		"Public", "49170", "49180", "50001", "198.51.100.23", "203.0.113.77", "198.51.100.66", "61000", "31337",
		"nurse", "10.0.0.99", "ssrc-audio-level", "rtcp-rsize", "bundle-only", "trickle", "ICU", "bed 7",
		"5000", "nack", "2^20", "FEC_KEY", "BUNDLE", "WMS", "candidate", "fingerprint", "setup", "ice-",
		"extmap", "msid", "mid:", "cname", "tool", "x-",
		strings.TrimRight(key30, "="), strings.TrimRight(key44, "="), strings.TrimRight(key30b, "="),
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("output carries %q:\n%s", s, text)
		}
	}
	// Every line is one parapet writes or one from the allow-list.
	allowed := regexp.MustCompile(`^(v=0|o=parapet 42 3 IN IP4 192\.0\.2\.10|s=parapet|c=IN IP4 192\.0\.2\.10|t=0 0|` +
		`m=(audio|video) 3000[02] RTP/S?AVP \d+( \d+)*|a=(sendrecv|rtpmap:\d+ [\w./-]+|fmtp:101 0-15|ptime:20|label:cam1|crypto:1 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/=]+))$`)
	for _, line := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		if !allowed.MatchString(line) {
			t.Errorf("unexpected line %q", line)
		}
	}
}

// A copied codec attribute that holds the source's key is dropped, and an
// output that would still carry it is refused.
func TestBuildSDPSecretGuard(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\na=fmtp:0 x=" + key30 + "\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	out, err := BuildSDP(d, Origin{Addr: relayV4}, []StreamPlan{{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 5000, 5001)}})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(key30)) || bytes.Contains(out, []byte("fmtp")) || !bytes.Contains(out, []byte("a=rtpmap:0 PCMU/8000")) {
		t.Errorf("output:\n%s", out)
	}
	if !bytes.Contains(out, []byte("o=- ")) {
		t.Errorf("empty username not written as '-':\n%s", out)
	}

	// A non-RTP format is copied verbatim, so it cannot be dropped: refused.
	body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=image 4000 udptl " + strings.ReplaceAll(key30, "/", "") + "\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.ReplaceAll(key30, "/", "") + "\r\n"
	d, err = ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	_, err = BuildSDP(d, Origin{Addr: relayV4}, []StreamPlan{{Active: true, Proto: "udptl", Local: ep(relayV4, 5000, 5001)}})
	if err == nil || !strings.Contains(err.Error(), "key material") {
		t.Errorf("BuildSDP error = %v, want key material refusal", err)
	}
}

func TestBuildSDPErrors(t *testing.T) {
	d, err := ParseSDP(crlf(readInput(t, "baresip-avp")))
	if err != nil {
		t.Fatal(err)
	}
	origin := Origin{Username: "parapet", Session: 1, Version: 1, Addr: relayV4}
	good := StreamPlan{Active: true, Proto: "RTP/SAVP", Local: ep(relayV4, 20000, 20001), Crypto: []Crypto{testCrypto(1, "AES_CM_128_HMAC_SHA1_80", 1)}}
	with := func(f func(p *StreamPlan)) []StreamPlan {
		p := good
		p.Crypto = slices.Clone(good.Crypto)
		f(&p)
		return []StreamPlan{p}
	}
	fp := testFingerprint("sha-256", 32, 0x21)
	withDTLS := func(setup string, f Fingerprint) []StreamPlan {
		return with(func(p *StreamPlan) {
			p.Proto, p.Crypto, p.DTLS = "UDP/TLS/RTP/SAVP", nil, &DTLSPlan{Fingerprint: f, Setup: setup}
		})
	}
	if _, err := BuildSDP(d, origin, []StreamPlan{good}); err != nil {
		t.Fatalf("good plan: %v", err)
	}
	if _, err := BuildSDP(d, origin, withDTLS("actpass", fp)); err != nil {
		t.Fatalf("good DTLS plan: %v", err)
	}
	tests := []struct {
		name    string
		src     *Description
		origin  Origin
		plans   []StreamPlan
		wantErr string
	}{
		{"nil source", nil, origin, nil, "no source description"},
		{"hand-made source", &Description{Streams: d.Streams}, origin, []StreamPlan{good}, "not made by ParseSDP"},
		{"plan count", d, origin, nil, "0 plans for 1 streams"},
		{"no origin address", d, Origin{Username: "parapet"}, []StreamPlan{good}, "origin address: not set"},
		{"origin username with space", d, Origin{Username: "a b", Addr: relayV4}, []StreamPlan{good}, "username"},
		{"no local address", d, origin, with(func(p *StreamPlan) { p.Local.Addr = netip.Addr{} }), "not set"},
		{"port 0", d, origin, with(func(p *StreamPlan) { p.Local.Port = 0 }), "local port"},
		{"port 65536", d, origin, with(func(p *StreamPlan) { p.Local.Port = 65536 }), "local port"},
		{"bad rtcp port", d, origin, with(func(p *StreamPlan) { p.Local.RTCPPort = 70000 }), "RTCP port"},
		{"proto injection", d, origin, with(func(p *StreamPlan) { p.Proto = "RTP/AVP\r\na=evil" }), "m= line"},
		{"empty proto", d, origin, with(func(p *StreamPlan) { p.Proto = "" }), "m= line"},
		{"bad direction", d, origin, with(func(p *StreamPlan) { p.Direction = "sideways" }), "direction"},
		{"NULL suite", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Suite = "NULL_HMAC_SHA1_80" }), "not supported"},
		{"suite injection", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Suite = "AES_CM_128_HMAC_SHA1_80\r\na=x" }), "not supported"},
		{"short key", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Key = p.Crypto[0].Key[:29] }), "key is 29 bytes"},
		{"MKI", d, origin, with(func(p *StreamPlan) { p.Crypto[0].MKI = true }), "MKI"},
		{"KDR", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Params = []string{"KDR=3"} }), "KDR is not supported"},
		{"unencrypted", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Params = []string{"UNENCRYPTED_SRTP"} }), "refusing to offer UNENCRYPTED_SRTP"},
		{"param injection", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Params = []string{"WSH=64\r\na=x"} }), "does not read back"},
		{"lifetime injection", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Lifetime = "2^20 x" }), "does not read back"},
		{"tag out of range", d, origin, with(func(p *StreamPlan) { p.Crypto[0].Tag = -4 }), "does not read back"},
		{"duplicate tags", d, origin, with(func(p *StreamPlan) { p.Crypto = append(p.Crypto, testCrypto(1, "AEAD_AES_128_GCM", 3)) }), "tag 1 is used twice"},
		{"proto with a space", d, origin, with(func(p *StreamPlan) { p.Proto = "RTP/AVP x" }), "m= line"},
		{"dtls holdconn", d, origin, withDTLS("holdconn", fp), "setup is not active, passive or actpass"},
		{"dtls no setup", d, origin, withDTLS("", fp), "setup is not active, passive or actpass"},
		{"dtls upper-case setup", d, origin, withDTLS("ACTPASS", fp), "setup is not active, passive or actpass"},
		{"dtls setup injection", d, origin, withDTLS("actpass\r\na=x", fp), "setup is not active, passive or actpass"},
		{"dtls no hash", d, origin, withDTLS("actpass", Fingerprint{Value: fp.Value}), "hash function is not a token"},
		{"dtls hash injection", d, origin, withDTLS("actpass", Fingerprint{Hash: "sha-256\r\na=x", Value: fp.Value}), "hash function is not a token"},
		{"dtls hash with a space", d, origin, withDTLS("actpass", Fingerprint{Hash: "sha 256", Value: fp.Value}), "hash function is not a token"},
		{"dtls no fingerprint bytes", d, origin, withDTLS("actpass", Fingerprint{Hash: "sha-256"}), "no fingerprint bytes"},
		{"dtls wrong length", d, origin, withDTLS("passive", testFingerprint("sha-256", 20, 1)), "sha-256 fingerprint is 20 bytes, needs 32"},
		{"dtls too long", d, origin, withDTLS("passive", testFingerprint("sha-512", 65, 1)), "more than 64 bytes"},
		{"dtls md5", d, origin, withDTLS("active", testFingerprint("md5", 16, 1)), "md5 is not allowed"},
		{"dtls unknown hash", d, origin, withDTLS("active", testFingerprint("sha3-256", 32, 1)), "hash function is not supported"},
		{"crypto and dtls", d, origin, with(func(p *StreamPlan) { p.DTLS = &DTLSPlan{Fingerprint: fp, Setup: "actpass"} }), "both crypto lines and DTLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := BuildSDP(tt.src, tt.origin, tt.plans)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("BuildSDP error = %v, want one containing %q\n%s", err, tt.wantErr, out)
			}
			if strings.Contains(err.Error(), "inline") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q carries a line", err)
			}
		})
	}

	// An active plan for a source stream without formats.
	empty, err := ParseSDP([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildSDP(empty, origin, []StreamPlan{good}); err == nil || !strings.Contains(err.Error(), "without formats") {
		t.Errorf("BuildSDP error = %v", err)
	}
	out, err := BuildSDP(empty, origin, []StreamPlan{{}})
	if err != nil || !bytes.Contains(out, []byte("\r\nm=audio 0 RTP/AVP\r\n")) || !bytes.Contains(out, []byte("c=IN IP4 192.0.2.10")) {
		t.Errorf("BuildSDP of a refused stream = %q, %v", out, err)
	}
}

func TestParseSDPErrors(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	many := func(line string, n int) string { return strings.Repeat(line, n) }
	tests := []struct {
		name, body, wantErr string
	}{
		{"empty", "", "empty body"},
		{"binary garbage", "\x00\x01\x02\xff\xfe\x7f binary \x1b[0m", "line 1: control character"},
		{"binary after lines", head + "\x89PNG\r\n\x1a\n", "line 4: not a <type>=<value> line"},
		{"control character after lines", head + "t=0 0\r\n\x1a\n", "line 5: control character"},
		{"random text", "hello world\r\n", "line 1: not a <type>=<value> line"},
		{"too large", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" + many("a=x-filler:0123456789012345678901234567890123456789\r\n", 400), "the limit is 16384"},
		{"no m= line", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\n", "no m= line"},
		{"active m= without c=", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "line 5: m=audio: no connection address"},
		{"bad IPv4", head + "c=IN IP4 999.1.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "line 4: c=: address is not an IP literal"},
		{"host name", head + "c=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "address is not an IP literal"},
		{"IPv6 labelled IP4", head + "c=IN IP4 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "not an IP4 address"},
		{"multicast", head + "c=IN IP4 224.2.1.1/127\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "not an IP literal"},
		{"multicast plain", head + "c=IN IP4 224.2.1.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "multicast"},
		{"broadcast", head + "c=IN IP4 255.255.255.255\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "broadcast"},
		{"zone", head + "c=IN IP6 fe80::1%eth0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "zone"},
		{"bad c= type", head + "c=IN ATM 1.2.3.4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "not IN IP4|IP6"},
		{"port 70000", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", "line 6: m=: port is not a number from 0 to 65535"},
		{"port range", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000/2 RTP/AVP 0\r\n", "port ranges"},
		{"payload type 128", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 128\r\n", "payload type"},
		{"no formats", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP\r\n", "no formats"},
		{"short m=", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000\r\n", "needs media, port and proto"},
		{"bad a=rtcp", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:x\r\n", "a=rtcp port"},
		{"port 65535 without rtcp", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 65535 RTP/AVP 0\r\n", "no port for RTCP"},
		{"too many m= lines", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\n" + many("m=audio 4000 RTP/AVP 0\r\n", 17), "more than 16 m= lines"},
		{"too many attributes", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" + many("a=x\r\n", 513), "more than 512 attributes"},
		{"version 1", "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", "parse sdp: invalid value"},
		{"out of order", head + "t=0 0\r\na=sendrecv\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n", "line 6: syntax error"},
		{"no v=", "o=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", "line 1: syntax error"},
		{"bare CR", head + "t=0 0\rm=audio 0 RTP/AVP 0\r\n", "control character"},
		{"unknown type", head + "x=1\r\n", "line 4: not a <type>=<value> line of a known type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseSDP error = %v, want one containing %q (%v)", err, tt.wantErr, d)
			}
		})
	}
}

// Errors never echo the body: here a crypto key and a bandwidth line that pion
// would quote.
func TestParseSDPErrorsAreSafe(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
	bodies := []string{
		head + "b=" + key30 + "\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
		head + "t=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\nc=IN IP4 " + key30 + "\r\n",
		head + "t=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\nm=audio 4000 RTP/SAVP " + key30 + "\r\n",
		head + "t=" + key30 + "\r\nm=audio 4000 RTP/SAVP 0\r\n",
		head + "t=0 0\r\nr=" + key30 + " 1\r\nm=audio 4000 RTP/SAVP 0\r\n",
		"v=0\r\no=" + key30 + " 1 1 IN " + key30 + "\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=" + key30 + " 4000 RTP/SAVP 0\r\n",
	}
	for i, b := range bodies {
		_, err := ParseSDP([]byte(b))
		if err == nil {
			t.Errorf("body %d parsed", i)
			continue
		}
		assertNoKeyText(t, err.Error(), key30)
		assertNoKeyText(t, err.Error(), key30[:12])
	}
}

func TestParseSDPExtraction(t *testing.T) {
	body := "v=0\r\no=u 5 6 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\na=recvonly\r\n" +
		"a=fingerprint:sha-256 AA:BB\r\n" +
		"m=audio 4000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp-mux\r\n" + // hold address, session direction
		"m=video 5000 RTP/AVP 96\r\na=inactive\r\na=rtcp:7000 IN IP4 198.51.100.1\r\n" +
		"m=audio 0 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n" +
		"m=audio 65535 RTP/AVP 0\r\na=rtcp-mux\r\n"
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if d.OriginUser != "u" || d.OriginSession != 5 || d.OriginVersion != 6 {
		t.Errorf("origin %q %d %d", d.OriginUser, d.OriginSession, d.OriginVersion)
	}
	// The session-level fingerprint is too short for sha-256: DTLS is set,
	// no fingerprint is kept and the problem is named.
	const fpProblem = "fingerprint 1: sha-256 fingerprint is 2 bytes, needs 32"
	want := []Stream{
		{Index: 0, Media: "audio", Port: 4000, Proto: "RTP/AVP", Formats: []string{"0"}, Codecs: []string{"PCMU/8000"}, Addr: netip.MustParseAddr("0.0.0.0"), RTCPPort: 4001, RTCPMux: true, DTLS: true, Direction: "recvonly", FingerprintProblem: fpProblem},
		{Index: 1, Media: "video", Port: 5000, Proto: "RTP/AVP", Formats: []string{"96"}, Codecs: []string{""}, Addr: netip.MustParseAddr("2001:db8::1"), RTCPPort: 7000, DTLS: true, Direction: "inactive", FingerprintProblem: fpProblem},
		{Index: 2, Media: "audio", Port: 0, Proto: "RTP/SAVP", Formats: []string{"0"}, Codecs: []string{"PCMU/8000"}, Addr: netip.MustParseAddr("2001:db8::1"), DTLS: true, Direction: "recvonly", FingerprintProblem: fpProblem,
			Crypto: []CryptoLine{{Crypto: Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30)}}}},
		{Index: 3, Media: "audio", Port: 65535, Proto: "RTP/AVP", Formats: []string{"0"}, Codecs: []string{"PCMU/8000"}, Addr: netip.MustParseAddr("2001:db8::1"), RTCPPort: 65535, RTCPMux: true, DTLS: true, Direction: "recvonly", FingerprintProblem: fpProblem},
	}
	if len(d.Streams) != len(want) {
		t.Fatalf("%d streams", len(d.Streams))
	}
	for i, st := range d.Streams {
		w := want[i]
		if fmt.Sprintf("%+v", st) != fmt.Sprintf("%+v", w) || (len(w.Crypto) > 0 && !bytes.Equal(st.Crypto[0].Key, w.Crypto[0].Key)) {
			t.Errorf("stream %d:\n got %+v\nwant %+v", i, st, w)
		}
	}
	// Inactive streams skip the c= requirement.
	if _, err := ParseSDP([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n")); err != nil {
		t.Errorf("port-0 stream without c=: %v", err)
	}
}

// Found by FuzzParseCrypto in the key-hunting code BuildSDP shares: invalid
// UTF-8 before "inline:" used to misplace the index and panic.
func TestBuildSDPInvalidUTF8BeforeKey(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/SAVP 0\r\na=crypto:\x80\x80\x80 Inline:\r\na=crypto:1 X \xff\xfeINLINE:" + key30 + "\r\n"
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := sourceSecrets(d.raw.(*sdp.SessionDescription)); !slices.Equal(got, []string{key30}) {
		t.Errorf("sourceSecrets = %q", got)
	}
	if _, err := BuildSDP(d, Origin{Addr: relayV4}, []StreamPlan{{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 5000, 5001)}}); err != nil {
		t.Fatal(err)
	}
}

// testFingerprint is a Fingerprint with deterministic bytes.
func testFingerprint(hash string, n int, seed byte) Fingerprint {
	v := make([]byte, n)
	for i := range v {
		v[i] = seed + byte(i)*7
	}
	return Fingerprint{Hash: hash, Value: v}
}

func sameFingerprints(a, b []Fingerprint) bool {
	return slices.EqualFunc(a, b, func(x, y Fingerprint) bool { return x.Hash == y.Hash && bytes.Equal(x.Value, y.Value) })
}

func TestFingerprintString(t *testing.T) {
	if s := (Fingerprint{Hash: "SHA-256", Value: []byte{0xab, 0x01, 0xff, 0x0c}}).String(); s != "sha-256 AB:01:FF:0C" {
		t.Errorf("String() = %q", s)
	}
	for _, h := range []struct {
		hash string
		n    int
	}{{"sha-1", 20}, {"sha-224", 28}, {"sha-256", 32}, {"sha-384", 48}, {"sha-512", 64}} {
		f := testFingerprint(h.hash, h.n, byte(h.n))
		back, err := parseFingerprint(f.String())
		if err != nil || !sameFingerprints([]Fingerprint{back}, []Fingerprint{f}) {
			t.Errorf("%s: %q reads back as %v, %v", h.hash, f, back, err)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	hex := func(n int) string { return testFingerprint("sha-256", n, 0xa0).String()[len("sha-256 "):] }
	f32 := testFingerprint("sha-256", 32, 0xa0)
	tests := []struct {
		name, value string
		want        Fingerprint // when wantErr is ""
		wantErr     string
	}{
		{"upper case", "sha-256 " + hex(32), f32, ""},
		{"lower-case hex", "sha-256 " + strings.ToLower(hex(32)), f32, ""},
		{"upper-case hash", "SHA-256 " + hex(32), f32, ""},
		{"mixed-case hash and hex", "Sha-1 " + strings.ToLower(hex(20)[:30]) + hex(20)[30:], testFingerprint("sha-1", 20, 0xa0), ""},
		{"extra whitespace", " \tsha-256  " + hex(32) + "\t ", f32, ""},
		{"empty", "", Fingerprint{}, "not <hash function> <fingerprint>"},
		{"hash only", "sha-256", Fingerprint{}, "not <hash function> <fingerprint>"},
		{"three fields", "sha-256 " + hex(16) + " " + hex(16), Fingerprint{}, "not <hash function> <fingerprint>"},
		{"hash not a token", "sha(256) " + hex(32), Fingerprint{}, "hash function is not a token"},
		{"md5", "md5 " + hex(16), Fingerprint{}, "hash function md5 is not allowed"},
		{"MD2", "MD2 " + hex(16), Fingerprint{}, "hash function md2 is not allowed"},
		{"unknown hash", "x-SECRETHASH " + hex(32), Fingerprint{}, "hash function is not supported"},
		{"wrong length", "sha-256 " + hex(20), Fingerprint{}, "sha-256 fingerprint is 20 bytes, needs 32"},
		{"sha-1 with 32 bytes", "sha-1 " + hex(32), Fingerprint{}, "sha-1 fingerprint is 32 bytes, needs 20"},
		{"too long", "sha-512 " + hex(65), Fingerprint{}, "longer than 64 bytes"},
		{"very long", "sha-512 " + strings.Repeat("AB:", 4000) + "AB", Fingerprint{}, "longer than 64 bytes"},
		{"no colons", "sha-256 " + strings.ReplaceAll(hex(32), ":", ""), Fingerprint{}, "not hex bytes"},
		{"single digit", "sha-256 A:" + hex(31), Fingerprint{}, "not hex bytes"},
		{"trailing colon", "sha-256 " + hex(32) + ":", Fingerprint{}, "not hex bytes"},
		{"leading colon", "sha-256 :" + hex(32), Fingerprint{}, "not hex bytes"},
		{"not hex", "sha-256 GG:" + hex(31), Fingerprint{}, "not hex bytes"},
		{"other separator", "sha-256 " + strings.ReplaceAll(hex(32), ":", "-"), Fingerprint{}, "not hex bytes"},
		{"non-ASCII", "sha-256 \xc3\xa9:" + hex(31), Fingerprint{}, "not hex bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFingerprint(tt.value)
			if tt.wantErr == "" {
				if err != nil || !sameFingerprints([]Fingerprint{got}, []Fingerprint{tt.want}) {
					t.Errorf("parseFingerprint = %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseFingerprint error = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "A0:") {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
}

func TestParseSDPDTLS(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	const m = "m=audio 4000 UDP/TLS/RTP/SAVP 0\r\n"
	fp1 := testFingerprint("sha-1", 20, 1)
	fp224 := testFingerprint("sha-224", 28, 2)
	fp256 := testFingerprint("sha-256", 32, 3)
	fp384 := testFingerprint("sha-384", 48, 4)
	fp512 := testFingerprint("sha-512", 64, 5)
	line := func(f Fingerprint) string { return "a=fingerprint:" + f.String() + "\r\n" }
	hexOf := func(f Fingerprint) string { return f.String()[len(f.Hash)+1:] }
	type want struct {
		dtls    bool
		fps     []Fingerprint
		problem string // a substring; "" for none
		setup   string
	}
	tests := []struct {
		name string
		body string
		want []want
	}{
		{"none", head + m, []want{{}}},
		{"session level applies to every stream", head + line(fp256) + "a=setup:actpass\r\n" + m + m,
			[]want{{true, []Fingerprint{fp256}, "", "actpass"}, {true, []Fingerprint{fp256}, "", "actpass"}}},
		{"media level overrides session level", head + line(fp256) + "a=setup:actpass\r\n" + m + line(fp1) + "a=setup:active\r\n" + m,
			[]want{{true, []Fingerprint{fp1}, "", "active"}, {true, []Fingerprint{fp256}, "", "actpass"}}},
		{"several fingerprints, every hash function", head + m + line(fp256) + line(fp1) + line(fp512) + line(fp224) + line(fp384),
			[]want{{true, []Fingerprint{fp256, fp1, fp512, fp224, fp384}, "", ""}}},
		{"two certificates, one hash function", head + m + line(fp256) + line(testFingerprint("sha-256", 32, 9)),
			[]want{{true, []Fingerprint{fp256, testFingerprint("sha-256", 32, 9)}, "", ""}}},
		{"lower-case hex, upper-case hash", head + m + "a=fingerprint:SHA-256 " + strings.ToLower(hexOf(fp256)) + "\r\n",
			[]want{{true, []Fingerprint{fp256}, "", ""}}},
		{"wrong length left out", head + m + "a=fingerprint:sha-256 " + hexOf(fp1) + "\r\n" + line(fp1),
			[]want{{true, []Fingerprint{fp1}, "fingerprint 1: sha-256 fingerprint is 20 bytes, needs 32", ""}}},
		{"md5 refused", head + m + "a=fingerprint:md5 " + hexOf(testFingerprint("md5", 16, 1)) + "\r\n" + line(fp256),
			[]want{{true, []Fingerprint{fp256}, "fingerprint 1: hash function md5 is not allowed", ""}}},
		{"md2 refused", head + m + line(fp256) + "a=fingerprint:md2 " + hexOf(testFingerprint("md2", 16, 1)) + "\r\n",
			[]want{{true, []Fingerprint{fp256}, "fingerprint 2: hash function md2 is not allowed", ""}}},
		{"unknown hash refused", head + m + "a=fingerprint:sha3-256 " + hexOf(fp256) + "\r\n",
			[]want{{true, nil, "fingerprint 1: hash function is not supported", ""}}},
		{"first problem is the one named", head + m + "a=fingerprint:sha-256 AA:BB\r\na=fingerprint:md5 AA\r\n",
			[]want{{true, nil, "fingerprint 1: sha-256 fingerprint is 2 bytes, needs 32", ""}}},
		{"malformed media level hides session level", head + line(fp256) + m + "a=fingerprint:sha-256 AA:BB\r\n" + m,
			[]want{{true, nil, "2 bytes", ""}, {true, []Fingerprint{fp256}, "", ""}}},
		{"empty value", head + m + "a=fingerprint\r\n", []want{{true, nil, "not <hash function> <fingerprint>", ""}}},
		{"more than 8", head + m + strings.Repeat(line(fp1), 10),
			[]want{{true, slices.Repeat([]Fingerprint{fp1}, 8), "more than 8 fingerprints", ""}}},
		{"refused stream keeps its attributes", head + "m=audio 0 UDP/TLS/RTP/SAVP 0\r\n" + line(fp384) + "a=setup:passive\r\n",
			[]want{{true, []Fingerprint{fp384}, "", "passive"}}},
		{"setup values", head +
			m + "a=setup:active\r\n" + m + "a=setup:passive\r\n" + m + "a=setup:actpass\r\n" + m + "a=setup:holdconn\r\n" +
			m + "a=setup:ACTPASS\r\n" + m + "a=setup: passive\r\n" + m + "a=setup:sideways\r\n" + m + "a=setup:\r\n" +
			m + "a=setup\r\n" + m + "a=setup:act pass\r\n",
			[]want{{setup: "active"}, {setup: "passive"}, {setup: "actpass"}, {setup: "holdconn"}, {setup: "actpass"}, {setup: "passive"}, {}, {}, {}, {}}},
		{"session-level setup", head + "a=setup:holdconn\r\n" + m + m + "a=setup:active\r\n",
			[]want{{setup: "holdconn"}, {setup: "active"}}},
		{"invalid media-level setup counts as absent", head + "a=setup:passive\r\n" + m + "a=setup:bogus\r\n" + m,
			[]want{{setup: "passive"}, {setup: "passive"}}},
		{"first setup line counts", head + m + "a=setup:active\r\na=setup:passive\r\n", []want{{setup: "active"}}},
		{"invalid session-level setup", head + "a=setup:x\r\n" + m, []want{{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ParseSDP([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			checkDescription(t, d)
			if len(d.Streams) != len(tt.want) {
				t.Fatalf("%d streams, want %d", len(d.Streams), len(tt.want))
			}
			for i, st := range d.Streams {
				w := tt.want[i]
				if st.DTLS != w.dtls || st.Setup != w.setup || !sameFingerprints(st.Fingerprints, w.fps) ||
					(w.problem == "") != (st.FingerprintProblem == "") || !strings.Contains(st.FingerprintProblem, w.problem) {
					t.Errorf("stream %d: dtls %v setup %q fingerprints %v problem %q\nwant dtls %v setup %q fingerprints %v problem %q",
						i, st.DTLS, st.Setup, st.Fingerprints, st.FingerprintProblem, w.dtls, w.setup, w.fps, w.problem)
				}
			}
		})
	}

	// Streams do not share the session-level fingerprint bytes.
	d, err := ParseSDP([]byte(head + line(fp256) + m + m))
	if err != nil {
		t.Fatal(err)
	}
	d.Streams[0].Fingerprints[0].Value[0] ^= 0xff
	if !bytes.Equal(d.Streams[1].Fingerprints[0].Value, fp256.Value) {
		t.Error("streams share fingerprint bytes")
	}
}

func TestDescriptionStringDTLS(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	fp := testFingerprint("sha-256", 32, 3)
	d, err := ParseSDP([]byte(head + "a=fingerprint:" + fp.String() + "\r\n" +
		"m=audio 4000 UDP/TLS/RTP/SAVP 0\r\na=setup:actpass\r\n" +
		"m=audio 4002 UDP/TLS/RTP/SAVP 0\r\na=fingerprint:md5 AA:BB\r\na=fingerprint:sha-1 " + testFingerprint("sha-1", 20, 1).String()[6:] + "\r\n" +
		"m=audio 4004 RTP/AVP 0\r\na=setup:passive\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := "sdp o=- 1 1; m=audio 4000 UDP/TLS/RTP/SAVP 192.0.2.1 dtls sha-256 setup:actpass" +
		"; m=audio 4002 UDP/TLS/RTP/SAVP 192.0.2.1 dtls sha-1 (fingerprint problem)" +
		"; m=audio 4004 RTP/AVP 192.0.2.1 dtls sha-256 setup:passive"
	if got := d.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	// A hand-made stream cannot put text into the summary.
	hand := Description{Streams: []Stream{{Media: "audio", Proto: "RTP/AVP", DTLS: true, Setup: "active\r\nx",
		Fingerprints: []Fingerprint{{Hash: "sha 256\r\n", Value: []byte{1}}}}}}
	if got := hand.String(); got != "sdp o=<invalid> 0 0; m=audio 0 RTP/AVP dtls <invalid>" {
		t.Errorf("String() = %q", got)
	}
}

// dtlsSource is an offer from a DTLS-SRTP peer: its own fingerprints and
// setup role, at both levels.
const dtlsSource = `v=0
o=- 77 1 IN IP4 198.51.100.5
s=-
c=IN IP4 198.51.100.5
t=0 0
a=fingerprint:sha-256 DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF:DE:AD:BE:EF
a=setup:actpass
m=audio 40000 UDP/TLS/RTP/SAVPF 111 0
a=rtpmap:111 opus/48000/2
a=rtpmap:0 PCMU/8000
a=fingerprint:sha-1 AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01
a=setup:active
a=rtcp-mux
a=sendrecv
m=video 40002 UDP/TLS/RTP/SAVPF 96
a=rtpmap:96 VP8/90000
a=rtcp-mux
m=audio 40004 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:` + key30 + `
`

func TestBuildSDPDTLS(t *testing.T) {
	d, err := ParseSDP([]byte(dtlsSource))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Streams) != 3 || len(d.Streams[0].Fingerprints) != 1 || d.Streams[0].Setup != "active" || d.Streams[1].Setup != "actpass" {
		t.Fatalf("unexpected parse: %v", d)
	}
	ours := testFingerprint("sha-256", 32, 0x21)
	origin := Origin{Username: "parapet", Session: 5, Version: 1, Addr: relayV4}
	for _, setup := range []string{"actpass", "passive", "active"} {
		t.Run(setup, func(t *testing.T) {
			dtls := &DTLSPlan{Fingerprint: ours, Setup: setup}
			plans := []StreamPlan{
				{Active: true, Proto: "UDP/TLS/RTP/SAVPF", Local: ep(relayV4, 20000, 20000), RTCPMux: true, DTLS: dtls},
				{Active: false, DTLS: dtls}, // refused: nothing of DTLS written
				{Active: true, Proto: "UDP/TLS/RTP/SAVP", Local: ep(relayV4, 20004, 20005), DTLS: dtls},
			}
			out, err := BuildSDP(d, origin, plans)
			if err != nil {
				t.Fatal(err)
			}
			text := string(out)
			// After the codec attributes, direction and rtcp-mux, where
			// a=crypto lines go.
			dtlsLines := "a=setup:" + setup + "\r\na=fingerprint:" + ours.String() + "\r\n"
			if !strings.Contains(text, "a=sendrecv\r\na=rtcp-mux\r\n"+dtlsLines+"m=video 0 ") ||
				!strings.HasSuffix(text, "m=audio 20004 UDP/TLS/RTP/SAVP 0\r\n"+dtlsLines) {
				t.Errorf("DTLS lines missing or out of place:\n%s", text)
			}
			if strings.Count(text, "a=setup:") != 2 || strings.Count(text, "a=fingerprint:") != 2 || strings.Contains(text, "crypto") {
				t.Errorf("unexpected attributes:\n%s", text)
			}
			// Nothing of the source's DTLS is copied.
			for _, s := range []string{"DE:AD:BE:EF", "AB:CD:EF", "sha-1", "198.51.100.5", "40000"} {
				if strings.Contains(text, s) {
					t.Errorf("output carries %q:\n%s", s, text)
				}
			}
			if setup != "actpass" && strings.Contains(text, "actpass") {
				t.Errorf("output carries the source's setup role:\n%s", text)
			}

			// Round trip: the output reads back with the plan's DTLS side.
			back, err := ParseSDP(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, st := range back.Streams {
				if !plans[i].Active {
					if st.DTLS || st.Setup != "" || st.Fingerprints != nil {
						t.Errorf("refused stream %d reads back with DTLS: %v", i, back)
					}
					continue
				}
				if !st.DTLS || st.Setup != setup || st.FingerprintProblem != "" || !sameFingerprints(st.Fingerprints, []Fingerprint{ours}) || len(st.Crypto) != 0 {
					t.Errorf("stream %d reads back as setup %q fingerprints %v problem %q", i, st.Setup, st.Fingerprints, st.FingerprintProblem)
				}
			}
		})
	}

	// Every hash function round-trips; the hash's case is normalised.
	for _, h := range []struct {
		hash string
		n    int
	}{{"sha-1", 20}, {"SHA-224", 28}, {"sha-256", 32}, {"Sha-384", 48}, {"sha-512", 64}} {
		f := testFingerprint(h.hash, h.n, byte(h.n))
		out, err := BuildSDP(d, origin, []StreamPlan{
			{Active: true, Proto: "UDP/TLS/RTP/SAVPF", Local: ep(relayV4, 20000, 20001), DTLS: &DTLSPlan{Fingerprint: f, Setup: "actpass"}},
			{}, {},
		})
		if err != nil {
			t.Fatalf("%s: %v", h.hash, err)
		}
		back, err := ParseSDP(out)
		if err != nil {
			t.Fatal(err)
		}
		want := Fingerprint{Hash: strings.ToLower(f.Hash), Value: f.Value}
		if st := back.Streams[0]; st.Setup != "actpass" || !sameFingerprints(st.Fingerprints, []Fingerprint{want}) {
			t.Errorf("%s reads back as %v %q", h.hash, st.Fingerprints, st.Setup)
		}
	}
}

// With DTLS toward the other leg, secretSDP's own fingerprints, setup roles
// and keys still stay on their leg.
func TestBuildSDPDTLSHidesSourceDTLS(t *testing.T) {
	d, err := ParseSDP([]byte(secretSDP))
	if err != nil {
		t.Fatal(err)
	}
	ours := testFingerprint("sha-256", 32, 0x40)
	plans := []StreamPlan{
		{Active: true, Proto: "UDP/TLS/RTP/SAVPF", Local: ep(relayV4, 30000, 30000), RTCPMux: true, DTLS: &DTLSPlan{Fingerprint: ours, Setup: "passive"}},
		{Active: true, Proto: "RTP/AVP", Local: ep(relayV4, 30002, 30003)},
	}
	out, err := BuildSDP(d, Origin{Username: "parapet", Session: 42, Version: 3, Addr: relayV4}, plans)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, s := range []string{"DE:AD:BE:EF", "AB:CD:EF", "actpass", "active", "sha-1", "PwdSecret", "10.99.88.78",
		strings.TrimRight(key30, "="), strings.TrimRight(key44, "=")} {
		if strings.Contains(text, s) {
			t.Errorf("output carries %q:\n%s", s, text)
		}
	}
	if !strings.Contains(text, "\r\na=rtcp-mux\r\na=setup:passive\r\na=fingerprint:"+ours.String()+"\r\nm=video ") || strings.Count(text, "a=fingerprint") != 1 {
		t.Errorf("output:\n%s", text)
	}
}

func BenchmarkParseSDP(b *testing.B) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"baresip", crlf(readInput(b, "baresip-srtp-mand"))},
		{"webrtc", crlf(readInput(b, "webrtc"))},
		{"worst", worstSDP()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				if _, err := ParseSDP(tc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuildSDP(b *testing.B) {
	d, err := ParseSDP(crlf(readInput(b, "webrtc")))
	if err != nil {
		b.Fatal(err)
	}
	plans := goldenCases[2].plans
	origin := Origin{Username: "parapet", Session: 1, Version: 1, Addr: relayV4}
	for b.Loop() {
		if _, err := BuildSDP(d, origin, plans); err != nil {
			b.Fatal(err)
		}
	}
}

// worstSDP is a body at the size limit made of the costliest lines: 16 m=
// lines and crypto attributes up to the attribute limit.
func worstSDP() []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n")
	line := "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\n"
	attrs := 0
	const m = "m=audio 4000 RTP/SAVP 0\r\n"
	for i := 0; i < maxStreams && b.Len()+len(m) <= MaxSDPSize; i++ {
		b.WriteString(m)
		for j := 0; j < 40 && attrs < maxAttributes && b.Len()+len(line) <= MaxSDPSize; j++ {
			b.WriteString(line)
			attrs++
		}
	}
	return []byte(b.String())
}

func TestWorstSDPParses(t *testing.T) {
	body := worstSDP()
	d, err := ParseSDP(body)
	if err != nil || len(body) < MaxSDPSize/2 {
		t.Fatalf("worst body (%d bytes): %v", len(body), err)
	}
	checkDescription(t, d)
}

// A stream names its formats from a=rtpmap, else RFC 3551's static table;
// Codec skips helper formats and names that cannot go into a record.
func TestStreamCodecs(t *testing.T) {
	body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
		"m=audio 4000 RTP/AVP 101 111 0 8 96\r\na=rtpmap:101 telephone-event/8000\r\na=rtpmap:111 opus/48000/2\r\n" +
		"a=rtpmap:96 " + strings.Repeat("x", 70) + "/8000\r\n" +
		"m=audio 4002 RTP/AVP 13 9\r\n" +
		"m=audio 4004 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	d, err := ParseSDP([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"telephone-event/8000", "opus/48000/2", "PCMU/8000", "PCMA/8000", ""}
	if got := d.Streams[0].Codecs; !slices.Equal(got, want) {
		t.Errorf("codecs %q, want %q", got, want)
	}
	for i, want := range []string{"opus/48000/2", "G722/8000", ""} {
		if got := d.Streams[i].Codec(); got != want {
			t.Errorf("stream %d codec %q, want %q", i, got, want)
		}
	}
}
