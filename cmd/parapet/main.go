// Command parapet is a session border controller for healthcare voice: no
// call leg that policy calls external carries SIP without TLS 1.2+ or media
// without SRTP, and every call leaves a tamper-evident record of what each
// leg negotiated.
//
// Usage:
//
//	parapet run [-c FILE]          serve (the embedded lab default without -c)
//	parapet demo                   the lab in one process: calls, records, summary
//	parapet check [-c FILE]        validate a config; errors with file:line:column
//	parapet verify -log FILE ...   walk the compliance log's hash chain
//	parapet report -log FILE ...   the auditor's pack (text, JSON, HTML, PDF)
//	parapet inventory -log FILE ... peers to upgrade or replace
//	parapet records -log FILE ...  print (or follow) the records matching filters
//	parapet audit CAPTURE ...      judge a pcap, pcapng or SIP trace with the same policy
//	parapet certs selfsigned -host NAME -o DIR
//	parapet version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func parapetVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// exitError carries a process exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

func exit(code int, err error) error { return &exitError{code: code, err: err} }

const usage = `parapet — a session border controller for healthcare voice

Usage:
  parapet run [-c FILE]             serve; without -c the embedded lab default (loopback only)
  parapet demo                      run the lab in one process: calls, records, summary
  parapet check [-c FILE] [-print]  validate a config (all errors with file:line:column);
                                    -print shows the canonical policy its hash covers
  parapet verify -log FILE [...] [-key signing.pub]
                                    verify the compliance log's hash chain and, with
                                    -key, that signed checkpoints cover it
  parapet report -log FILE [...] [-key signing.pub ...] [-since T] [-until T]
                 [-format text|json|html|pdf] [-o OUT]
                                    the auditor's pack: HIPAA 164.312 controls with
                                    their evidence, verified against the log
  parapet inventory -log FILE [...] the legacy inventory: peers to upgrade or replace
  parapet records -log FILE [...] [filters] [-format table|jsonl] [-follow]
                                    print the records matching filters (time, type,
                                    zone, route, rule, verdict, peer, control,
                                    number, Call-ID), or follow the live log
  parapet audit [-c FILE] [-format ...] [-o OUT] CAPTURE...
                                    judge packet captures (pcap, pcapng) and SIP
                                    traces with the same policy: the same report
  parapet certs selfsigned -host NAME -o DIR
                                    write a lab CA and a certificate for NAME
  parapet version                   print the version

Run "parapet COMMAND -h" for a command's flags.
`

func main() {
	err := dispatch(os.Args[1:], os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		err = ee.err
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "parapet:", err)
	}
	os.Exit(code)
}

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exit(2, nil)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "verify":
		return cmdVerify(rest, stdout, stderr)
	case "report":
		return cmdReport(rest, stdout, stderr)
	case "inventory":
		return cmdInventory(rest, stdout, stderr)
	case "records":
		return cmdRecords(rest, stdout, stderr)
	case "audit":
		return cmdAudit(rest, stdout, stderr)
	case "certs":
		return cmdCerts(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "parapet", parapetVersion())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "parapet: unknown command %q\n\n%s", cmd, usage)
	return exit(2, nil)
}

func newFlags(name string, stderr io.Writer, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exit(0, nil)
		}
		return exit(2, nil)
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exit(2, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}
