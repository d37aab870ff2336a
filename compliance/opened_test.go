package compliance

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// The opened event names the policy in force and its configuration when
// the writer is told them, and stays as it was when it is not.
func TestOpenedNamesPolicy(t *testing.T) {
	for _, tc := range []struct {
		opts       WriterOptions
		hash, conf string
	}{
		{WriterOptions{Version: "v", PolicyHash: "sha256:" + hex64, Config: "/etc/parapet/parapet.hcl"}, "sha256:" + hex64, "/etc/parapet/parapet.hcl"},
		{WriterOptions{Version: "v"}, "", ""},
	} {
		path := filepath.Join(t.TempDir(), "c.jsonl")
		w, err := OpenWriter(path, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		lines := splitLines(readFile(t, path))
		var r Record
		if err := json.Unmarshal(lines[0], &r); err != nil {
			t.Fatal(err)
		}
		if r.Log == nil || r.Log.Event != LogOpened || r.Log.PolicyHash != tc.hash || r.Log.Config != tc.conf || r.Log.PrevPolicyHash != "" {
			t.Errorf("opened record %s", lines[0])
		}
		if res, err := Verify([]string{path}, VerifyOptions{Head: true}); err != nil || !res.OK() {
			t.Errorf("log does not verify: %v %+v", err, res)
		}
	}
}

const hex64 = "4b7f0c2d9e8a1f3b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b"
