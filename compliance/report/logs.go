package report

import (
	"bytes"
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/parapet-sbc/parapet/compliance"
)

// LogOptions configures FromLogs.
type LogOptions struct {
	Options
	// Keys are the public keys the chains' checkpoints are verified with:
	// each chain with the key its checkpoints name. A chain whose key is
	// not given is verified by its hash chain only, and the report says so.
	Keys []ed25519.PublicKey
	// Progress, when set, is called as the files are read with the bytes
	// done and the total (every file is read twice: once for the report,
	// once to verify it).
	Progress func(done, total int64)
}

// FromLogs builds the report of the records in the log files at paths. The
// files may belong to several parapet instances and be given in any order:
// they are grouped into chains by their links (the first record of a rotated
// file points at the last record of the file it continues), each chain is
// verified on its own, and the results stand side by side. Memory stays
// flat: records are streamed, one line at a time.
func FromLogs(paths []string, opts LogOptions) (*Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("report: no log files given")
	}
	chains, err := GroupChains(paths)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		total += 2 * st.Size()
	}
	var done atomic.Int64
	progress := func(n int64) {
		if opts.Progress != nil {
			opts.Progress(done.Add(n), total)
		}
	}
	opts.Options.Kind = KindLog
	b := NewBuilder(opts.Options)
	for _, chain := range chains {
		src := b.AddSource(Source{Name: chain[len(chain)-1], Files: chain})
		// The key is named by the chain's checkpoints; when keys are given,
		// look at them first, so that verifying (a second read of the
		// files) runs beside the report's own read, on another core.
		var keyIDs []string
		if len(opts.Keys) > 0 {
			if keyIDs, err = chainKeyIDs(chain); err != nil {
				return nil, err
			}
		}
		key, note := pickKey(opts.Keys, keyIDs)
		if note != "" {
			b.AddNote(src, note)
		}
		type verified struct {
			res *compliance.VerifyResult
			err error
		}
		vc := make(chan verified, 1)
		go func() {
			res, err := compliance.Verify(chain, compliance.VerifyOptions{Head: true, PublicKey: key})
			vc <- verified{res, err}
		}()
		var bad int
		var size int64
		var scanErr error
		for _, p := range chain {
			n, err := b.scanFile(src, p, progress, &bad)
			if err != nil {
				scanErr = err
				break
			}
			size += n
		}
		v := <-vc
		if scanErr != nil {
			return nil, scanErr
		}
		if v.err != nil {
			return nil, fmt.Errorf("report: %w", v.err)
		}
		if bad > 0 {
			b.AddNote(src, fmt.Sprintf("%d %s not an intact record and left out (see the verification)", bad, plural(bad, "line is", "lines are")))
		}
		progress(size)
		b.SetVerification(src, verification(v.res, key))
	}
	return b.Report(), nil
}

// scanFile folds the records of one file into source src. It returns the
// file's size.
func (b *Builder) scanFile(src int, path string, progress func(int64), bad *int) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	cr := &countingReader{r: f, report: progress}
	err = compliance.ScanReader(cr, func(_ int, rec *compliance.Record) error {
		b.Add(src, rec)
		return nil
	}, func(int, error) { *bad++ })
	cr.flush()
	if err != nil {
		return 0, fmt.Errorf("report: read %s: %w", path, err)
	}
	return cr.n, nil
}

// chainKeyIDs returns the key IDs the checkpoints of a chain name, in the
// order they first appear. The first checkpoint of each file is enough:
// parapet signs a log with one key, and a checkpoint comes within the
// first records of every run.
func chainKeyIDs(chain []string) ([]string, error) {
	var ids []string
	for _, p := range chain {
		errStop := errors.New("stop")
		err := compliance.ScanFile(p, func(_ int, rec *compliance.Record) error {
			if rec.Log == nil || rec.Log.Event != compliance.LogCheckpoint {
				return nil
			}
			if id := checkpointKeyID(rec.Log.Detail); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			return errStop
		}, nil)
		if err != nil && !errors.Is(err, errStop) {
			return nil, fmt.Errorf("report: %w", err)
		}
	}
	return ids, nil
}

// checkpointKeyID reads the key ID of a checkpoint's detail ("key=<id>
// sig=<signature>").
func checkpointKeyID(detail string) string {
	for _, f := range strings.Fields(detail) {
		if id, ok := strings.CutPrefix(f, "key="); ok {
			return id
		}
	}
	return ""
}

// pickKey chooses the key a chain is verified with: the given key its
// checkpoints name; otherwise, when keys were given, the first of them, so
// that a chain signed with a key that was not given (someone who rewrote
// the log and signed it with a key of their own), or not signed at all,
// fails as parapet verify says it does, and a note says which key it names.
func pickKey(keys []ed25519.PublicKey, ids []string) (ed25519.PublicKey, string) {
	if len(keys) == 0 {
		return nil, ""
	}
	for _, id := range ids {
		for _, k := range keys {
			if compliance.KeyID(k) == id {
				return k, ""
			}
		}
	}
	if len(ids) == 0 {
		return keys[0], ""
	}
	return keys[0], fmt.Sprintf("the checkpoints are signed with %s, which is not among the keys given", strings.Join(ids, ", "))
}

// verification turns what Verify found into the report's form.
func verification(res *compliance.VerifyResult, key ed25519.PublicKey) *Verification {
	v := &Verification{
		Intact: res.OK(), Records: res.Records, FirstSeq: res.FirstSeq, LastSeq: res.LastSeq, LastHash: res.LastHash,
		HeadChecked: res.HeadChecked, ContinuesFrom: res.ContinuesFrom, Checkpoints: res.Checkpoints,
		SignedSeq: res.SignedSeq, UnsignedRecords: res.UnsignedRecords, Recovered: len(res.Recovered),
		PolicyHashes: []string{},
	}
	if res.Problem != nil {
		v.Problem, v.ProblemKind = res.Problem.String(), res.Problem.Kind
	}
	if res.Truncated != nil {
		v.Truncated = res.Truncated.String()
	}
	switch {
	case key == nil:
		v.Signatures = SignaturesNotChecked
	case res.Problem != nil:
		// A bad signature, records left unsigned, or a broken chain
		// that stopped the walk before the checkpoints could cover it.
		v.Signatures = SignaturesFailed
	case res.Checkpoints == 0:
		v.Signatures = SignaturesNone
	default:
		v.Signatures = SignaturesVerified
	}
	if key != nil {
		v.KeyID = compliance.KeyID(key)
	}
	return v
}

// countingReader counts the bytes read and reports them every MiB.
type countingReader struct {
	r       io.Reader
	n       int64
	pending int64
	report  func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.pending += int64(n)
	if c.pending >= 1<<20 {
		c.flush()
	}
	return n, err
}

func (c *countingReader) flush() {
	if c.pending > 0 {
		c.report(c.pending)
		c.pending = 0
	}
}

// fileEnds is what linking a file into a chain needs: its first record's
// prev and its last record's hash.
type fileEnds struct {
	path      string
	firstPrev string
	firstSeq  uint64
	lastHash  string
	empty     bool
}

// GroupChains groups log files into chains, each in order oldest first: a
// file follows the one whose last record its first record points at. Files
// that follow none start a chain. Chains are ordered by their first
// record's sequence number, then by name.
func GroupChains(paths []string) ([][]string, error) {
	ends := make([]fileEnds, 0, len(paths))
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		e, err := readEnds(p)
		if err != nil {
			return nil, err
		}
		ends = append(ends, e)
	}
	byLast := map[string]int{}
	for i, e := range ends {
		if e.lastHash != "" {
			byLast[e.lastHash] = i
		}
	}
	next := make([]int, len(ends))
	hasPrev := make([]bool, len(ends))
	for i := range next {
		next[i] = -1
	}
	for i, e := range ends {
		if e.firstPrev == "" {
			continue
		}
		if j, ok := byLast[e.firstPrev]; ok && j != i && next[j] == -1 {
			next[j] = i
			hasPrev[i] = true
		}
	}
	used := make([]bool, len(ends))
	var chains [][]string
	walk := func(i int) {
		var c []string
		for ; i != -1 && !used[i]; i = next[i] {
			used[i] = true
			c = append(c, ends[i].path)
		}
		chains = append(chains, c)
	}
	for i := range ends {
		if !hasPrev[i] {
			walk(i)
		}
	}
	for i := range ends { // what a cycle leaves (cannot happen with real hashes)
		if !used[i] {
			walk(i)
		}
	}
	first := map[string]fileEnds{}
	for _, e := range ends {
		first[e.path] = e
	}
	slices.SortStableFunc(chains, func(a, b []string) int {
		if c := cmp.Compare(first[a[0]].firstSeq, first[b[0]].firstSeq); c != 0 {
			return c
		}
		return strings.Compare(a[0], b[0])
	})
	return chains, nil
}

// tailBytes is how much of a file's end readEnds reads to find its last
// record; records are a few KiB.
const tailBytes = 1 << 20

// readEnds reads the first and last intact records of a log file.
func readEnds(path string) (fileEnds, error) {
	e := fileEnds{path: path}
	f, err := os.Open(path)
	if err != nil {
		return e, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	errStop := errors.New("stop")
	bad := 0
	err = compliance.ScanReader(f, func(_ int, rec *compliance.Record) error {
		e.firstPrev, e.firstSeq = rec.Prev, rec.Seq
		return errStop
	}, func(int, error) { bad++ })
	if err == nil {
		if bad > 0 {
			// Lines, and not one of them a record: not a compliance log
			// (or one whose every line was damaged). Say so rather than
			// report it as a tampered log.
			return e, fmt.Errorf("report: %s is not a compliance log: none of its %d %s is an intact record",
				path, bad, plural(bad, "line", "lines"))
		}
		e.empty = true
		return e, nil
	}
	if !errors.Is(err, errStop) {
		return e, fmt.Errorf("report: read %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return e, fmt.Errorf("report: %w", err)
	}
	off := max(st.Size()-tailBytes, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return e, fmt.Errorf("report: read %s: %w", path, err)
	}
	lines := bytes.Split(buf, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		if rec, err := compliance.DecodeLine(lines[i]); err == nil {
			e.lastHash = rec.Hash
			return e, nil
		}
	}
	// No intact record in the tail: walk the whole file.
	err = compliance.ScanFile(path, func(_ int, rec *compliance.Record) error {
		e.lastHash = rec.Hash
		return nil
	}, nil)
	if err != nil {
		return e, fmt.Errorf("report: %w", err)
	}
	return e, nil
}
