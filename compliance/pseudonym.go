package compliance

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// KeySize is the size in bytes of a pseudonymisation key.
const KeySize = 32

// TokenPrefix starts every pseudonym, naming the function that made it.
const TokenPrefix = "hmac-sha256:"

// tokenHexLen is how many hex digits of the HMAC a token keeps (128 bits).
const tokenHexLen = 32

// LoadOrCreateKey returns the pseudonymisation key stored hex-encoded at
// path, creating it (32 bytes from crypto/rand, file 0600, parent
// directories 0700) when the file does not exist. An existing file that does
// not hold exactly one 32-byte hex key, or that group or others can read, is
// an error: the key is never silently replaced, because a new key would
// break the link between old and new pseudonyms.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create pseudonym key: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create pseudonym key: %w", err)
	}
	// Write a temporary file and link it into place, so that the key file
	// appears complete or not at all, and an existing key is never
	// overwritten.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create pseudonym key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(hex.EncodeToString(key) + "\n")
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("create pseudonym key %s: %w", path, werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			return readKey(path)
		}
		return nil, fmt.Errorf("create pseudonym key %s: %w", path, err)
	}
	_ = syncDir(filepath.Dir(path))
	return key, nil
}

// LoadKey reads the pseudonymisation key stored at path with the checks of
// LoadOrCreateKey, but never creates one: a missing file is an error that
// wraps fs.ErrNotExist. It is for tools that read records, which must not
// start a key of their own.
func LoadKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read pseudonym key: %w", err)
	}
	return key, err
}

// readKey reads and checks an existing key file.
func readKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read pseudonym key: %w", err)
	}
	if runtime.GOOS != "windows" {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("pseudonym key %s is accessible to group or others (mode %04o): run chmod 600 on it", path, fi.Mode().Perm())
		}
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("pseudonym key %s is corrupt (want %d hex-encoded bytes); it is not replaced automatically: restore it from backup, or move it away to start new pseudonyms that will not match old records", path, KeySize)
	}
	return key, nil
}

// Pseudonymizer turns caller and callee identifiers into keyed tokens: the
// same identifier always gives the same token under one key, so records of
// one party can be linked, while the identifier cannot be recovered without
// the key. It is safe for concurrent use.
type Pseudonymizer struct {
	key []byte
}

// NewPseudonymizer returns a Pseudonymizer using key (normally from
// LoadOrCreateKey). The key is copied.
func NewPseudonymizer(key []byte) *Pseudonymizer {
	return &Pseudonymizer{key: bytes.Clone(key)}
}

// Token returns "hmac-sha256:" followed by the first 32 hex digits of
// HMAC-SHA256(key, normalize(id)), or "" for an empty id. Telephone numbers
// are normalised first, so "+1 (555) 010-9999" and "+15550109999" give the
// same token.
func (p *Pseudonymizer) Token(id string) string {
	n := normalizeID(id)
	if n == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(n))
	return TokenPrefix + hex.EncodeToString(m.Sum(nil))[:tokenHexLen]
}

// callIDLabel separates Call-ID tokens from party tokens under one key.
const callIDLabel = "sip-call-id\x00"

// CallID returns the token of a SIP Call-ID: "hmac-sha256:" followed by the
// first 32 hex digits of HMAC-SHA256(key, "sip-call-id" NUL callID), or ""
// for an empty one. The Call-ID is taken byte for byte (no normalisation), so
// whoever holds the key can compute the token of a Call-ID from a carrier's
// CDR or a SIP capture and find the record.
func (p *Pseudonymizer) CallID(callID string) string {
	if callID == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(callIDLabel))
	m.Write([]byte(callID))
	return TokenPrefix + hex.EncodeToString(m.Sum(nil))[:tokenHexLen]
}

// normalizeID trims surrounding space and, for a telephone number (digits
// with an optional leading '+', written with RFC 3966 visual separators or
// spaces), drops the separators " -.()". Other identifiers (SIP user names)
// are kept as they are apart from the trimming, so "j.doe" and "jdoe" stay
// different people.
func normalizeID(id string) string {
	id = strings.TrimSpace(id)
	if !isPhoneNumber(id) {
		return id
	}
	var b strings.Builder
	for i, r := range id {
		switch {
		case r >= '0' && r <= '9', r == '*', r == '#':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isPhoneNumber reports whether s is a telephone number: at least one digit,
// '+' only in front, otherwise digits, '*', '#' and visual separators.
func isPhoneNumber(s string) bool {
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == '*', r == '#', strings.ContainsRune(" -.()", r):
		default:
			return false
		}
	}
	return digits > 0
}
