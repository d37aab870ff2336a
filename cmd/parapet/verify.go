package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// multiFlag collects a repeated flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func cmdVerify(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verify", stderr, "Usage: parapet verify -log FILE [-log FILE ...] [-key signing.pub]\n\nWalk the compliance log's hash chain (files oldest first) and name the\nfirst bad line; with -key, also check the signed checkpoints, which\nprove the log was not rewritten by someone without parapet's signing key,\nand that they cover every record but an unsigned tail no longer than\nparapet leaves one (at most 100 records, time stamps within 90 s).\nExit status 0 when intact, 1 when tampering is found, 2 on usage or I/O\nerrors. A torn last line (a crash mid-write) is reported but is not\ntampering.")
	var logs multiFlag
	fs.Var(&logs, "log", "compliance log `file` (repeat for rotated files, oldest first)")
	noHead := fs.Bool("no-head", false, "do not compare with the <log>.head file")
	keyFile := fs.String("key", "", "public `key` (signing.pub from parapet's state directory) to check the signed checkpoints with")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if len(logs) == 0 {
		fs.Usage()
		return exit(2, fmt.Errorf("verify needs -log FILE"))
	}
	opts := compliance.VerifyOptions{Head: !*noHead}
	if *keyFile != "" {
		pub, err := compliance.LoadPublicKey(*keyFile)
		if err != nil {
			return exit(2, err)
		}
		opts.PublicKey = pub
	}
	res, err := compliance.Verify(logs, opts)
	if err != nil {
		return exit(2, err)
	}
	if res.ContinuesFrom != "" {
		fmt.Fprintf(stdout, "note: the chain continues %s, which was not given; its start is taken as is\n", res.ContinuesFrom)
	}
	for _, r := range res.Recovered {
		fmt.Fprintf(stdout, "note: %s (sealed after a crash, not tampering)\n", r.String())
	}
	if res.Truncated != nil {
		fmt.Fprintf(stdout, "warning: %s (a crash mid-write, not tampering)\n", res.Truncated.String())
	}
	if res.OK() && res.Records == 0 {
		fmt.Fprintln(stdout, "warning: the log holds no record: a log parapet writes starts with an opened event, so it was emptied or is not one parapet wrote")
	}
	if !res.OK() {
		fmt.Fprintf(stdout, "TAMPERED: %s\n", res.Problem.String())
		fmt.Fprintf(stdout, "%d records verified before the first problem\n", res.Records)
		return exit(1, nil)
	}
	head := "no head file"
	if res.HeadChecked {
		head = "head file matches"
	}
	fmt.Fprintf(stdout, "OK: %d %s (%d %s, %d %s, %d %s), seq %d..%d, %s, last hash %s\n",
		res.Records, plural(res.Records, "record"), res.Calls, plural(res.Calls, "call"),
		res.ConnEvents, plural(res.ConnEvents, "connection event"), res.LogEvents, plural(res.LogEvents, "log event"),
		res.FirstSeq, res.LastSeq, head, res.LastHash)
	if opts.PublicKey == nil {
		fmt.Fprintln(stdout, "signatures: not checked (give -key signing.pub to prove the log was not rewritten)")
		return nil
	}
	keyID := compliance.KeyID(opts.PublicKey)
	if res.Checkpoints == 0 {
		fmt.Fprintf(stdout, "signatures: no checkpoint signed with %s\n", keyID)
	} else {
		fmt.Fprintf(stdout, "signatures: %d %s signed with %s cover seq %d..%d", res.Checkpoints, plural(res.Checkpoints, "checkpoint"),
			keyID, res.FirstSeq, res.SignedSeq)
		if !res.SignedTime.IsZero() {
			fmt.Fprintf(stdout, ", written up to %s", res.SignedTime.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(stdout)
	}
	n := res.UnsignedRecords
	if n == 0 {
		fmt.Fprintln(stdout, "unsigned tail: none, the log ends with a checkpoint")
		return nil
	}
	where := "after the last checkpoint"
	if res.Checkpoints == 0 {
		where = "the whole log"
	}
	fmt.Fprintf(stdout, "unsigned tail: seq %d..%d (%s), %d %s over %v, within what parapet leaves unsigned (at most %d records over %v); only the hash chain covers it: anyone able to write the log could have rewritten or cut it there\n",
		res.LastSeq-uint64(n)+1, res.LastSeq, where, n, plural(n, "record"), res.UnsignedSpan.Round(time.Millisecond),
		compliance.MaxUnsignedRecords, compliance.MaxUnsignedSpan)
	return nil
}

// plural is word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
