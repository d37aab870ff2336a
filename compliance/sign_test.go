package compliance

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A signed log: checkpoints every few records and before "closed", each
// verifying with the public key.
func TestSignedCheckpoints(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	again, err := LoadOrCreateSigningKey(dir)
	if err != nil || !again.Equal(key) {
		t.Fatalf("the key changed when read again: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, SigningKeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("signing key file: %v %v", st, err)
	}

	path := writeLog(t, 7, WriterOptions{Signer: key, CheckpointEvery: 3})
	res, err := Verify([]string{path}, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() {
		t.Fatalf("signed log: %v %+v", err, res.Problem)
	}
	// opened, 7 records with a checkpoint after every 3 (seq 1..2 then),
	// a checkpoint before closed.
	if res.Checkpoints < 3 {
		t.Errorf("%d checkpoints, want at least 3", res.Checkpoints)
	}
	if res.SignedSeq != res.LastSeq-2 {
		t.Errorf("signed up to seq %d of %d; want all but the final checkpoint and closed", res.SignedSeq, res.LastSeq)
	}

	// Without the key the chain alone is checked; with another key the
	// checkpoints do not prove anything.
	if res, _ := Verify([]string{path}, VerifyOptions{}); !res.OK() || res.Checkpoints != 0 {
		t.Errorf("unsigned verification: %+v", res)
	}
	otherDir := t.TempDir()
	if _, err := LoadOrCreateSigningKey(otherDir); err != nil {
		t.Fatal(err)
	}
	other, _ := LoadPublicKey(filepath.Join(otherDir, PublicKeyFile))
	if res, _ := Verify([]string{path}, VerifyOptions{PublicKey: other}); res.OK() || res.Problem.Kind != ProblemSignature {
		t.Errorf("another key: %+v", res.Problem)
	}
}

// Someone who rewrites the log and recomputes the whole chain fools the
// hash chain, but not the checkpoints.
func TestRechainedLogCaughtBySignature(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := writeLog(t, 6, WriterOptions{Signer: key, CheckpointEvery: 100, CheckpointInterval: time.Hour})

	// Change the disposition of the first call and re-hash every line
	// after it, as an attacker without the key would.
	var out bytes.Buffer
	prev := ""
	changed := false
	for _, line := range splitLines(readFile(t, path)) {
		var r Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		if r.Call != nil && !changed {
			r.Call.Disposition = DispositionRejected
			changed = true
		}
		r.Prev = prev
		b, h, err := encodeLine(&r)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		prev = h
	}
	if !changed {
		t.Fatal("no call record to change")
	}
	writeFile(t, path, out.Bytes())
	os.Remove(headPath(path))

	if res, _ := Verify([]string{path}, VerifyOptions{}); !res.OK() {
		t.Fatalf("the re-chained log should fool the chain alone: %+v", res.Problem)
	}
	res, _ := Verify([]string{path}, VerifyOptions{PublicKey: pub})
	if res.OK() || res.Problem.Kind != ProblemSignature {
		t.Fatalf("re-chained log with the key: %+v", res.Problem)
	}
}

// Checkpoints and rotation: a signed chain across rotated files verifies
// with the key, and every file but the last ends signed.
func TestSignedCheckpointsAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := filepath.Join(dir, "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{RotateBytes: 4000, Now: newClock(time.Second).Now, Version: "v1",
		Signer: key, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	for i := range 20 {
		if err := w.Append(sampleRecord(p, i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := ChainFiles(path)
	if err != nil || len(files) < 3 {
		t.Fatalf("files %v %v, want a few", files, err)
	}
	res, err := Verify(files, VerifyOptions{Head: true, PublicKey: pub})
	if err != nil || !res.OK() {
		t.Fatalf("rotated signed log: %v %+v", err, res.Problem)
	}
	if res.Checkpoints < 10 {
		t.Errorf("%d checkpoints for 20 records at one per 2", res.Checkpoints)
	}
}

// On a quiet system the timer signs the last records: no append is needed
// to trigger the checkpoint, and nothing new means no further checkpoint.
func TestCheckpointTimer(t *testing.T) {
	dir := t.TempDir()
	key, pub := signingKeys(t, dir)
	path := filepath.Join(dir, "compliance.jsonl")
	w, err := OpenWriter(path, WriterOptions{Version: "v0.1.0-test", Signer: key, CheckpointInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPseudonymizer(testKey())
	if err := w.Append(sampleRecord(p, 0)); err != nil {
		t.Fatal(err)
	}
	checkpoints := func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Count(b, []byte(`"event":"`+LogCheckpoint+`"`))
	}
	deadline := time.Now().Add(10 * time.Second)
	for checkpoints() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint written by the timer")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Several more ticks over nothing new.
	time.Sleep(200 * time.Millisecond)
	if n := checkpoints(); n != 1 {
		t.Errorf("%d checkpoints over one record, want 1", n)
	}
	// The timer's checkpoint signs the record, before Close adds anything.
	res, err := Verify([]string{path}, VerifyOptions{PublicKey: pub})
	if err != nil || !res.OK() || res.SignedSeq != res.LastSeq-1 {
		t.Fatalf("timer checkpoint: %v %+v", err, res)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Close found nothing unsigned: closed follows the timer's checkpoint.
	if n := checkpoints(); n != 1 {
		t.Errorf("%d checkpoints after Close, want 1", n)
	}
}

// signingKeys creates a signing key pair in dir and returns both halves.
func signingKeys(t *testing.T, dir string) (ed25519.PrivateKey, ed25519.PublicKey) {
	t.Helper()
	key, err := LoadOrCreateSigningKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return key, pub
}
