package compliance

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTokenFormat(t *testing.T) {
	p := NewPseudonymizer(testKey())
	tok := p.Token("+15550109999")
	if !regexp.MustCompile(`^hmac-sha256:[0-9a-f]{32}$`).MatchString(tok) {
		t.Fatalf("token %q", tok)
	}
	// It is the documented function: HMAC-SHA256(key, id), first 32 hex digits.
	m := hmac.New(sha256.New, testKey())
	m.Write([]byte("+15550109999"))
	if want := "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]; tok != want {
		t.Fatalf("token %q, want %q", tok, want)
	}
	if p.Token("") != "" || p.Token("   ") != "" {
		t.Error("empty id gave a token")
	}
	if strings.Contains(tok, "5550109999") {
		t.Error("token contains the number")
	}
}

func TestTokenStableAndKeyed(t *testing.T) {
	a1, a2 := NewPseudonymizer(testKey()), NewPseudonymizer(bytes.Clone(testKey()))
	other := bytes.Clone(testKey())
	other[0] ^= 1
	b := NewPseudonymizer(other)
	for _, id := range []string{"+15550109999", "alice", "sip:bob@clinic.example"} {
		if a1.Token(id) != a2.Token(id) {
			t.Errorf("%q: tokens differ between instances with one key", id)
		}
		if a1.Token(id) == b.Token(id) {
			t.Errorf("%q: same token under different keys", id)
		}
	}
	if a1.Token("+15550109999") == a1.Token("+15550109998") {
		t.Error("different numbers, same token")
	}
	// The key is copied: changing the caller's slice changes nothing.
	k := bytes.Clone(testKey())
	p := NewPseudonymizer(k)
	before := p.Token("x")
	k[0] ^= 0xff
	if p.Token("x") != before {
		t.Error("Pseudonymizer shares the caller's key slice")
	}
}

func TestTokenNormalisation(t *testing.T) {
	p := NewPseudonymizer(testKey())
	same := [][]string{
		{"+15550109999", "+1 (555) 010-9999", " +1.555.010.9999 ", "+1-555-010-9999", "\t+1 555 0109999\n"},
		{"5550109999", "555-010-9999", "(555) 010 9999"},
		{"*67#", " *67# "},
	}
	for _, group := range same {
		for _, id := range group[1:] {
			if p.Token(id) != p.Token(group[0]) {
				t.Errorf("%q and %q give different tokens", id, group[0])
			}
		}
	}
	differ := [][2]string{
		{"+15550109999", "15550109999"}, // the leading + is kept
		{"j.doe", "jdoe"},               // names keep their dots
		{"Alice", "alice"},              // and their case
		{"1+5550109999", "15550109999"}, // a '+' inside is no number
	}
	for _, d := range differ {
		if p.Token(d[0]) == p.Token(d[1]) {
			t.Errorf("%q and %q give the same token", d[0], d[1])
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "sub")
	path := filepath.Join(dir, "pseudonym.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KeySize || bytes.Equal(k1, make([]byte, KeySize)) {
		t.Fatalf("key %x", k1)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	text := strings.TrimSpace(string(readFile(t, path)))
	if text != hex.EncodeToString(k1) {
		t.Fatalf("key file holds %q", text)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("existing key not reused")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	// A second, fresh key differs.
	k3, err := LoadOrCreateKey(filepath.Join(dir, "other.key"))
	if err != nil || bytes.Equal(k1, k3) {
		t.Fatalf("second key: %v, equal %v", err, bytes.Equal(k1, k3))
	}
}

func TestLoadOrCreateKeyRefusesBadFiles(t *testing.T) {
	for name, content := range map[string]string{
		"empty":     "",
		"short":     strings.Repeat("ab", 16),
		"long":      strings.Repeat("ab", 33),
		"not hex":   strings.Repeat("zz", 32),
		"two lines": strings.Repeat("ab", 32) + "\n" + strings.Repeat("ab", 32),
	} {
		path := filepath.Join(t.TempDir(), "pseudonym.key")
		writeFile(t, path, []byte(content))
		if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: err = %v", name, err)
		}
		if got := string(readFile(t, path)); got != content {
			t.Errorf("%s: key file replaced", name)
		}
	}
	path := filepath.Join(t.TempDir(), "pseudonym.key")
	writeFile(t, path, []byte(strings.Repeat("ab", 32)+"\n"))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: err = %v", err)
	}
}

// A Call-ID's token is the documented HMAC, byte for byte, and never equal
// to the party token of the same text.
func TestCallIDToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	p := NewPseudonymizer(key)
	id := " 3848276298220188511@atlanta.example.com"
	m := hmac.New(sha256.New, key)
	m.Write([]byte("sip-call-id\x00" + id))
	want := "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32]
	if got := p.CallID(id); got != want {
		t.Errorf("CallID = %q, want %q", got, want)
	}
	if p.CallID(id) == p.CallID(strings.TrimSpace(id)) {
		t.Error("Call-IDs are normalised; they must be taken as on the wire")
	}
	if p.CallID("5551234567") == p.Token("5551234567") {
		t.Error("a Call-ID token equals a party token")
	}
	if p.CallID("") != "" {
		t.Error("empty Call-ID gives a token")
	}
}

// LoadKey reads what LoadOrCreateKey wrote and creates nothing.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pseudonym.key")
	if _, err := LoadKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing key: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("LoadKey created %v", entries)
	}
	want, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadKey(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("LoadKey: %x, %v; want %x", got, err, want)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
}
