package media

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/pion/srtp/v3"
)

// Keys used below, with their lengths.
const (
	key30    = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"                     // RFC 4568 section 4 example, 30 bytes
	key30b   = "d+PR5PFGQUkuvNbHrNphEVcNnwD+uKwje4lzinmm"                     // 30 bytes
	key44    = "q9BK0qg7acvfF7xch5VuOupkKTBR6p9WEbBys8oY0BFKeOquUZQJ4Wl6ocQ=" // 44 bytes, padded
	key28raw = "cznLZDAQsj5q1ETqWpNPLX/1Q+BnG8GIZlDFCg"                       // 28 bytes, unpadded
)

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

func TestParseCrypto(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  Crypto
	}{
		{
			name:  "baresip srtp-mand",
			value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30b,
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30b)},
		},
		{
			name:  "RFC 4568 section 4 example with lifetime and MKI",
			value: "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30), Lifetime: "2^20", MKI: true},
		},
		{
			name:  "RFC 4568 section 5.1 example",
			value: "1 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_32", Key: mustDecode(t, "NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"), Lifetime: "2^20", MKI: true},
		},
		{
			name:  "RFC 4568 FEC_ORDER example",
			value: "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP",
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"), Lifetime: "2^20", MKI: true, Params: []string{"FEC_ORDER=FEC_SRTP"}},
		},
		{
			name:  "decimal lifetime",
			value: "7 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576",
			want:  Crypto{Tag: 7, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30), Lifetime: "1048576"},
		},
		{
			name:  "MKI without lifetime",
			value: "2 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4",
			want:  Crypto{Tag: 2, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30), MKI: true},
		},
		{
			name:  "liberal whitespace",
			value: " \t3\t AEAD_AES_256_GCM   inline:" + key44 + "  KDR=0 \t",
			want:  Crypto{Tag: 3, Suite: "AEAD_AES_256_GCM", Key: mustDecode(t, key44), Params: []string{"KDR=0"}},
		},
		{
			name:  "unpadded AEAD key",
			value: "2 AEAD_AES_128_GCM inline:" + key28raw,
			want:  Crypto{Tag: 2, Suite: "AEAD_AES_128_GCM", Key: mustDecode(t, key28raw)},
		},
		{
			name:  "padded AEAD key",
			value: "2 AEAD_AES_128_GCM inline:" + key28raw + "==",
			want:  Crypto{Tag: 2, Suite: "AEAD_AES_128_GCM", Key: mustDecode(t, key28raw)},
		},
		{
			name:  "key method is case-insensitive",
			value: "1 AES_CM_128_HMAC_SHA1_80 INLINE:" + key30,
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30)},
		},
		{
			name:  "nine-digit tag",
			value: "999999999 AES_CM_128_HMAC_SHA1_80 inline:" + key30,
			want:  Crypto{Tag: 999999999, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30)},
		},
		{
			name:  "unsupported suite parses",
			value: "5 NULL_HMAC_SHA1_80 inline:" + key30,
			want:  Crypto{Tag: 5, Suite: "NULL_HMAC_SHA1_80", Key: mustDecode(t, key30)},
		},
		{
			name:  "session parameters kept as written",
			value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP WSH=64 -x-vendor",
			want:  Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30), Params: []string{"UNENCRYPTED_SRTP", "WSH=64", "-x-vendor"}},
		},
		{
			name:  "several keys: the first is returned",
			value: "2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP",
			want:  Crypto{Tag: 2, Suite: "F8_128_HMAC_SHA1_80", Key: mustDecode(t, "MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm"), Lifetime: "2^20", MKI: true, Params: []string{"FEC_ORDER=FEC_SRTP"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCrypto(tt.value)
			if err != nil {
				t.Fatalf("ParseCrypto: %v", err)
			}
			if !sameCrypto(got, tt.want) {
				t.Errorf("ParseCrypto = %v (key %x), want %v (key %x)", got, got.Key, tt.want, tt.want.Key)
			}
		})
	}
}

func TestParseCryptoErrors(t *testing.T) {
	tests := []struct {
		name, value, wantErr string
	}{
		{"empty", "", "empty attribute"},
		{"blank", " \t ", "empty attribute"},
		{"no tag", "AES_CM_128_HMAC_SHA1_80 inline:" + key30, "tag is not 1 to 9 digits"},
		{"ten-digit tag", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + key30, "tag is not 1 to 9 digits"},
		{"negative tag", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + key30, "tag is not 1 to 9 digits"},
		{"no suite", "1", "no crypto suite"},
		{"key where the suite belongs", "1 inline:" + key30, "crypto suite is not a name"},
		{"no key", "1 AES_CM_128_HMAC_SHA1_80", "no key parameters"},
		{"not inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + key30, "key method is not inline"},
		{"no method", "1 AES_CM_128_HMAC_SHA1_80 " + key30, "not method:info"},
		{"empty key", "1 AES_CM_128_HMAC_SHA1_80 inline:", "empty key"},
		{"empty key with lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:|2^20", "empty key"},
		{"bad base64 character", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30[:20] + "*" + key30[21:], "not valid base64"},
		{"url-safe base64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.NewReplacer("+", "-", "/", "_").Replace(key30b), "not valid base64"},
		{"too much padding", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "===", "not valid base64"},
		{"impossible length", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "A", "not valid base64"},
		{"padding in the middle", "1 AES_CM_128_HMAC_SHA1_80 inline:AB==" + key30, "not valid base64"},
		{"bad lifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^x", "lifetime"},
		{"bad MKI length", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:129", "MKI"},
		{"MKI length 0", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:0", "MKI"},
		{"two MKIs", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4|2:4", "not key|lifetime|MKI"},
		{"too many fields", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4|x", "too many"},
		{"control character", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "\r\na=x", "invalid character"},
		{"non-ascii", "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=\u00b9", "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCrypto(tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseCrypto error = %v, want one containing %q", err, tt.wantErr)
			}
			assertNoKeyText(t, err.Error(), key30, key30b)
		})
	}
}

// TestCryptoLineProblems covers the verdicts ParseSDP attaches to each line.
func TestCryptoLineProblems(t *testing.T) {
	tests := []struct {
		name        string
		value       string
		wantProblem string // substring; "" for none
		wantUnsafe  []string
		wantSuite   string
	}{
		{name: "baresip", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30b, wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "lifetime 2^N", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "lifetime decimal", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1048576", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "MKI", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|1:4", wantProblem: "MKI is not supported", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "MKI after lifetime", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + "|2^20|1:4", wantProblem: "MKI is not supported", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "two inline keys", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + ";inline:" + key30b, wantProblem: "several master keys are not supported", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "KDR=0", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=0", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "KDR=5", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=5", wantProblem: "KDR is not supported", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "KDR=25", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " KDR=25", wantProblem: "KDR is not a number from 0 to 24", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "UNENCRYPTED_SRTP", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " UNENCRYPTED_SRTP", wantUnsafe: []string{"UNENCRYPTED_SRTP"}, wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "all three unsafe", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " unencrypted_srtcp UNAUTHENTICATED_SRTP UNENCRYPTED_SRTP", wantUnsafe: []string{"UNENCRYPTED_SRTCP", "UNAUTHENTICATED_SRTP", "UNENCRYPTED_SRTP"}, wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "tolerated parameters", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " FEC_ORDER=SRTP_FEC FEC_KEY=inline:" + key30b + " WSH=128 -optional", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "unknown mandatory parameter", value: "1 AES_CM_128_HMAC_SHA1_80 inline:" + key30 + " " + key30b, wantProblem: "session parameter 1 is unknown", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "NULL suite has no problem", value: "1 NULL_HMAC_SHA1_80 inline:" + key30, wantSuite: "NULL_HMAC_SHA1_80"},
		{name: "AES_256_CM suite has no problem", value: "1 AES_256_CM_HMAC_SHA1_80 inline:" + key44, wantSuite: "AES_256_CM_HMAC_SHA1_80"},
		{name: "wrong key length", value: "1 AEAD_AES_256_GCM inline:" + key30, wantProblem: "key is 30 bytes, AEAD_AES_256_GCM needs 44", wantSuite: "AEAD_AES_256_GCM"},
		{name: "short AEAD 128 key", value: "1 AEAD_AES_128_GCM inline:" + key30, wantProblem: "key is 30 bytes, AEAD_AES_128_GCM needs 28", wantSuite: "AEAD_AES_128_GCM"},
		{name: "unpadded AEAD key accepted", value: "1 AEAD_AES_128_GCM inline:" + key28raw, wantSuite: "AEAD_AES_128_GCM"},
		{name: "unparseable keeps the suite", value: "1 AES_CM_128_HMAC_SHA1_80 inline:***", wantProblem: "parse crypto: key is not valid base64", wantSuite: "AES_CM_128_HMAC_SHA1_80"},
		{name: "unparseable never keeps a key as suite", value: "1 inline:" + key30, wantProblem: "crypto suite is not a name", wantSuite: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := parseCryptoLine(tt.value)
			if tt.wantProblem == "" && l.Problem != "" || !strings.Contains(l.Problem, tt.wantProblem) {
				t.Errorf("Problem = %q, want %q", l.Problem, tt.wantProblem)
			}
			if !slices.Equal(l.Unsafe, tt.wantUnsafe) {
				t.Errorf("Unsafe = %q, want %q", l.Unsafe, tt.wantUnsafe)
			}
			if l.Suite != tt.wantSuite {
				t.Errorf("Suite = %q, want %q", l.Suite, tt.wantSuite)
			}
			assertNoKeyText(t, l.Problem, key30, key30b, key44)
			assertNoKeyText(t, fmt.Sprintf("%v|%+v|%#v|%s", l, l, l, l), key30, key30b, key44)
		})
	}
}

func TestSuites(t *testing.T) {
	tests := []struct {
		suite   string
		keyLen  int
		profile srtp.ProtectionProfile
	}{
		{"AES_CM_128_HMAC_SHA1_80", 30, srtp.ProtectionProfileAes128CmHmacSha1_80},
		{"AES_CM_128_HMAC_SHA1_32", 30, srtp.ProtectionProfileAes128CmHmacSha1_32},
		{"AEAD_AES_128_GCM", 28, srtp.ProtectionProfileAeadAes128Gcm},
		{"AEAD_AES_256_GCM", 44, srtp.ProtectionProfileAeadAes256Gcm},
	}
	for _, tt := range tests {
		t.Run(tt.suite, func(t *testing.T) {
			if !SupportedSuite(tt.suite) {
				t.Fatal("not supported")
			}
			n, ok := KeyLen(tt.suite)
			if !ok || n != tt.keyLen {
				t.Errorf("KeyLen = %d, %v; want %d", n, ok, tt.keyLen)
			}
			p, err := Profile(tt.suite)
			if err != nil || p != tt.profile {
				t.Fatalf("Profile = %v, %v; want %v", p, err, tt.profile)
			}
			// Our lengths must agree with pion's.
			pk, _ := p.KeyLen()
			ps, _ := p.SaltLen()
			if pk+ps != tt.keyLen {
				t.Errorf("pion key+salt = %d, want %d", pk+ps, tt.keyLen)
			}
			c, err := NewCrypto(3, tt.suite)
			if err != nil {
				t.Fatalf("NewCrypto: %v", err)
			}
			if c.Tag != 3 || c.Suite != tt.suite || len(c.Key) != tt.keyLen {
				t.Errorf("NewCrypto = %v with %d key bytes", c, len(c.Key))
			}
			c2, _ := NewCrypto(3, tt.suite)
			if bytes.Equal(c.Key, c2.Key) {
				t.Error("two NewCrypto keys are equal")
			}
			key, salt, err := c.SplitKey()
			if err != nil || len(key) != pk || len(salt) != ps || !bytes.Equal(append(key, salt...), c.Key) {
				t.Errorf("SplitKey = %d, %d bytes, %v", len(key), len(salt), err)
			}
			if _, err := srtp.CreateContext(key, salt, p); err != nil {
				t.Errorf("pion rejects the split key: %v", err)
			}
		})
	}
	for _, s := range []string{"NULL_HMAC_SHA1_80", "NULL_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80", "F8_128_HMAC_SHA1_80", "aes_cm_128_hmac_sha1_80", ""} {
		if SupportedSuite(s) {
			t.Errorf("SupportedSuite(%q) = true", s)
		}
		if _, ok := KeyLen(s); ok {
			t.Errorf("KeyLen(%q) ok", s)
		}
		if _, err := Profile(s); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("Profile(%q) error = %v", s, err)
		}
		if _, err := NewCrypto(1, s); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("NewCrypto(%q) error = %v", s, err)
		}
	}
	if _, err := NewCrypto(-1, "AES_CM_128_HMAC_SHA1_80"); err == nil {
		t.Error("NewCrypto accepted tag -1")
	}
	if _, err := NewCrypto(1000000000, "AES_CM_128_HMAC_SHA1_80"); err == nil {
		t.Error("NewCrypto accepted a ten-digit tag")
	}
	bad := Crypto{Tag: 1, Suite: "AEAD_AES_128_GCM", Key: make([]byte, 30)}
	if _, _, err := bad.SplitKey(); err == nil || !strings.Contains(err.Error(), "key is 30 bytes, AEAD_AES_128_GCM needs 28") {
		t.Errorf("SplitKey of a 30-byte AEAD_AES_128_GCM key: %v", err)
	}
}

func TestMarshalPadsAndRoundTrips(t *testing.T) {
	tests := []struct {
		suite   string
		b64Len  int
		padding string
	}{
		{"AES_CM_128_HMAC_SHA1_80", 40, ""},   // 30 bytes: 10 full groups
		{"AES_CM_128_HMAC_SHA1_32", 40, ""},   // 30 bytes
		{"AEAD_AES_128_GCM", 40, "=="},        // 28 bytes: 9 groups + 1 byte
		{"AEAD_AES_256_GCM", 60, "="},         // 44 bytes: 14 groups + 2 bytes
		{"AES_256_CM_HMAC_SHA1_80", 64, "=="}, // 46 bytes, not ours, still padded
	}
	for _, tt := range tests {
		t.Run(tt.suite, func(t *testing.T) {
			n, ok := KeyLen(tt.suite)
			if !ok {
				n = 46
			}
			key := make([]byte, n)
			for i := range key {
				key[i] = byte(i*37 + 11)
			}
			c := Crypto{Tag: 12, Suite: tt.suite, Key: key, Lifetime: "2^31", Params: []string{"KDR=0", "WSH=64"}}
			m := c.Marshal()
			_, inline, _ := strings.Cut(m, "inline:")
			b64, _, _ := strings.Cut(inline, "|")
			if len(b64) != tt.b64Len || !strings.HasSuffix(b64, tt.padding) || strings.TrimRight(b64, "=") != b64[:len(b64)-len(tt.padding)] {
				t.Errorf("key written as %d chars %q, want %d ending in %q", len(b64), b64, tt.b64Len, tt.padding)
			}
			want := "12 " + tt.suite + " inline:" + base64.StdEncoding.EncodeToString(key) + "|2^31 KDR=0 WSH=64"
			if m != want {
				t.Errorf("Marshal = %q, want %q", m, want)
			}
			back, err := ParseCrypto(m)
			if err != nil || !sameCrypto(back, c) {
				t.Errorf("ParseCrypto(Marshal) = %v, %v; want %v", back, err, c)
			}
		})
	}
	// An MKI is never written.
	c := Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: mustDecode(t, key30), MKI: true}
	if m := c.Marshal(); m != "1 AES_CM_128_HMAC_SHA1_80 inline:"+key30 {
		t.Errorf("Marshal with MKI = %q", m)
	}
}

// TestCryptoNeverPrintsKey formats Crypto values every way a developer might
// and checks that no form of the key comes out.
func TestCryptoNeverPrintsKey(t *testing.T) {
	key := mustDecode(t, key44)
	c := Crypto{Tag: 1, Suite: "AEAD_AES_256_GCM", Key: key, Lifetime: "2^31", Params: []string{"KDR=0", "FEC_KEY=inline:" + key30, "X-VENDOR=" + key30b}}
	line := CryptoLine{Crypto: c, Problem: "MKI is not supported", Unsafe: []string{"UNENCRYPTED_SRTP"}}
	st := Stream{Index: 0, Media: "audio", Crypto: []CryptoLine{line}}
	desc, err := ParseSDP([]byte("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AEAD_AES_256_GCM inline:" + key44 + "\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	type holder struct {
		C  Crypto
		P  *Crypto
		Cs []Crypto
	}
	values := []any{c, &c, line, &line, st, &st, []Crypto{c}, holder{c, &c, []Crypto{c}}, *desc, desc, desc.Streams}
	var out strings.Builder
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%T %v"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		fmt.Fprintln(&out, v)
		fmt.Fprint(&out, v, "\n")
	}
	for _, h := range []slog.Handler{slog.NewTextHandler(&out, nil), slog.NewJSONHandler(&out, nil)} {
		l := slog.New(h)
		l.Info("crypto", "c", c, "p", &c, "line", line, "desc", desc, "d", *desc)
	}
	got := out.String()
	forms := []string{
		key44, strings.TrimRight(key44, "="), key30, key30b,
		hex.EncodeToString(key), strings.ToUpper(hex.EncodeToString(key)),
		fmt.Sprint(key), fmt.Sprintf("%v", key[:8]), fmt.Sprintf("%o", key[:8]), fmt.Sprintf("%b", key[:4]),
		string(key[:8]), fmt.Sprintf("%q", key[:8]),
	}
	for _, f := range forms {
		if strings.Contains(got, strings.Trim(f, "[]\"")) {
			t.Errorf("key material %q printed:\n%s", f, got)
		}
	}
	if !strings.Contains(got, "tag 1 AEAD_AES_256_GCM inline:<redacted>|2^31 KDR=0 FEC_KEY=<redacted> <param>") {
		t.Errorf("redacted form missing:\n%s", got)
	}
	if s := (Crypto{Tag: 1, Suite: "AES_CM_128_HMAC_SHA1_80", Key: key}).String(); s != "tag 1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>" {
		t.Errorf("String = %q", s)
	}
	// A hand-built Crypto with a key in its suite or lifetime does not print it.
	odd := Crypto{Tag: 1, Suite: key44, Lifetime: key30, Key: key}
	assertNoKeyText(t, fmt.Sprintf("%v %#v", odd, odd), key44, key30)
}

// assertNoKeyText fails if s holds any of the keys, padded or not.
func assertNoKeyText(t *testing.T, s string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(s, strings.TrimRight(k, "=")) {
			t.Errorf("%q contains key %q", s, k)
		}
	}
}
