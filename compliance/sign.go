package compliance

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Signed checkpoints. The hash chain proves that nothing changed since a
// record was written, but anyone who can rewrite the whole file can
// rewrite the chain with it. So the writer, given an Ed25519 key, appends
// a checkpoint record every so often whose detail is a signature over the
// hash of the record before it: every record up to the last checkpoint is
// then bound to the key. An auditor who holds the public key (and not the
// log's keeper) verifies a copy of the log without trusting whoever kept
// it; records after the last checkpoint are protected by the chain only.
// Verify with the public key therefore also requires every record to be
// covered by a checkpoint but for an unsigned tail no longer than the
// writer leaves one (MaxUnsignedRecords, MaxUnsignedSpan), and a checkpoint
// right before every LogClosed: removing checkpoints and recomputing the
// chain does not pass. That tail, and cutting the log short, is what is
// left to someone without the key (docs/records.md says how to close it).

// checkpointLabel prefixes the signed message, so that a checkpoint
// signature cannot be taken for any other use of the key.
const checkpointLabel = "parapet-checkpoint/v1 "

// Default checkpoint spacing. They are also the most a Writer allows
// (larger WriterOptions values are lowered to them), because Verify with a
// public key holds every log to them.
const (
	DefaultCheckpointEvery    = 100
	DefaultCheckpointInterval = 60 // seconds
)

// What Verify with a public key accepts after the last checkpoint (the
// unsigned tail), derived from the writer's rule: a checkpoint follows at
// the latest the DefaultCheckpointEvery-th record after the last one, and
// once DefaultCheckpointInterval has passed since the last one it comes at
// the next record or from the timer, which looks every quarter interval.
// So the tail holds at most MaxUnsignedRecords records, and its records'
// time stamps lie within 1.25 intervals of each other (75 s): the first
// can be no earlier than the last checkpoint, the last no later than the
// timer's first look after the interval. MaxUnsignedSpan allows a quarter
// interval more (90 s in all) for a timer that looks late: a busy machine,
// or a slow fsync holding the log while the checkpoint falls due. Time
// stamps are the writer's wall clock, so a clock stepped forward by more
// than that while records were unsigned can make an honest tail fail.
const (
	MaxUnsignedRecords = DefaultCheckpointEvery
	MaxUnsignedSpan    = DefaultCheckpointInterval * time.Second * 3 / 2
)

// SigningKeyFile and PublicKeyFile are the key files LoadOrCreateSigningKey
// keeps in a state directory.
const (
	SigningKeyFile = "signing.key"
	PublicKeyFile  = "signing.pub"
)

// KeyID names a public key in checkpoints: "ed25519:" and the first 16 hex
// digits of the SHA-256 of the key.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// checkpointDetail signs prev, the hash of the record a checkpoint follows.
func checkpointDetail(key ed25519.PrivateKey, prev string) string {
	sig := ed25519.Sign(key, []byte(checkpointLabel+prev))
	return fmt.Sprintf("key=%s sig=%s", KeyID(key.Public().(ed25519.PublicKey)), base64.RawStdEncoding.EncodeToString(sig))
}

// checkCheckpoint verifies a checkpoint's detail against the hash prev of
// the record before it.
func checkCheckpoint(pub ed25519.PublicKey, detail, prev string) error {
	var keyID, sig string
	for _, f := range strings.Fields(detail) {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "key":
			keyID = v
		case "sig":
			sig = v
		}
	}
	if keyID != KeyID(pub) {
		return fmt.Errorf("it is signed by key %q, not the given key %s", keyID, KeyID(pub))
	}
	b, err := base64.RawStdEncoding.DecodeString(sig)
	if err != nil || len(b) != ed25519.SignatureSize || !ed25519.Verify(pub, []byte(checkpointLabel+prev), b) {
		return errors.New("its signature does not verify")
	}
	return nil
}

// LoadOrCreateSigningKey reads the Ed25519 signing key in dir, creating it
// (mode 0600) and its public half (signing.pub, mode 0644, for auditors)
// the first time.
func LoadOrCreateSigningKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, SigningKeyFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return createSigningKey(dir)
	}
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return key, nil
}

func createSigningKey(dir string) (ed25519.PrivateKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The public half first: a crash in between leaves no private key
	// without its public one.
	if err := os.WriteFile(filepath.Join(dir, PublicKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, SigningKeyFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return key, f.Close()
}

// LoadPublicKey reads a PEM public key such as signing.pub.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: not a PEM public key", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 public key", path)
	}
	return pub, nil
}
