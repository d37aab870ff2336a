package media

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cryptoSeeds returns the a=crypto values of the golden inputs.
func cryptoSeeds(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, body := range sdpSeeds(tb) {
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\r"), "a=crypto:"); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// sdpSeeds returns the golden inputs, LF and CRLF.
func sdpSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "sdp", "*.sdp"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no seed inputs: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, b, crlf(b))
	}
	return out
}

// inputKeys finds, independently of the code under test, the inline key
// strings of every a=crypto line in body that are long enough to be real keys.
func inputKeys(body []byte) []string {
	var keys []string
	for _, line := range bytes.Split(body, []byte("\n")) {
		v, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\r")), []byte("a=crypto:"))
		if !ok {
			continue
		}
		s := string(v)
		for {
			lower := []byte(s) // ASCII-only lowering keeps byte positions
			for j, ch := range lower {
				if ch >= 'A' && ch <= 'Z' {
					lower[j] = ch + 'a' - 'A'
				}
			}
			i := bytes.Index(lower, []byte("inline:"))
			if i < 0 {
				break
			}
			s = s[i+len("inline:"):]
			k := s
			if j := strings.IndexAny(k, "|; \t"); j >= 0 {
				k = k[:j]
			}
			if k = strings.TrimRight(k, "="); len(k) >= minSecretLen {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

func FuzzParseCrypto(f *testing.F) {
	for _, s := range cryptoSeeds(f) {
		f.Add(s)
	}
	for _, s := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
		"1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
		"2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
		"3 AEAD_AES_128_GCM inline:" + key28raw + " KDR=0 UNENCRYPTED_SRTCP WSH=64 -ext FEC_KEY=inline:" + key30,
		"4 NULL_HMAC_SHA1_80 inline:" + key30 + "|1048576",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		l := parseCryptoLine(value) // never panics
		_ = l.String()
		c, err := ParseCrypto(value)
		if err != nil {
			for _, k := range inputKeys([]byte("a=crypto:" + value)) {
				if strings.Contains(err.Error(), k) {
					t.Fatalf("error %q carries key %q", err, k)
				}
			}
			if l.Problem != err.Error() {
				t.Fatalf("Problem %q, error %q", l.Problem, err)
			}
			return
		}
		m := c.Marshal()
		back, err := ParseCrypto(m)
		if err != nil {
			t.Fatalf("ParseCrypto(%q) = %v", m, err)
		}
		want := c
		want.MKI = false // Marshal never writes an MKI
		if !sameCrypto(back, want) {
			t.Fatalf("round trip of %q: %v, want %v", m, back, want)
		}
		if m2 := back.Marshal(); m2 != m {
			t.Fatalf("Marshal not stable: %q then %q", m, m2)
		}
	})
}
