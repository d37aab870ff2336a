package main

import (
	"bufio"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
)

const reportHelp = `Usage: parapet report -log FILE [-log FILE ...] [-key signing.pub ...] [-since T] [-until T]
                      [-format text|json|html|pdf] [-page A4|Letter] [-o OUT]
       parapet report -c CONFIG [...]

The auditor's pack: for the period, the calls by disposition and zone, the share of
external legs with TLS 1.2+ and with SRTP, what was negotiated, peer certificates,
rejections, upgrades, downgrade attempts and observe-mode decisions, media attacks,
the legacy inventory, and each HIPAA 164.312 control's status with its evidence.

Give every file of the logs to cover, in any order: rotated files and the logs of
several parapet instances are grouped into chains by their links, and each chain is
verified on its own (with -key, its signed checkpoints too; give each instance's
signing.pub). The report names the hash of the last record of each chain, which ties
it to the log (docs/reports.md). With -c and no -log, the log the configuration names
(its rotated files and the live one) and, without -key, the signing.pub of its state
directory.

T is an RFC 3339 time (2026-12-01T08:00:00Z), a date (2026-12-01, UTC midnight) or a
duration before now (24h, 7d). Exit status 0 when the report is written, 1 when it is
written but a chain failed verification, 2 on usage or I/O errors.`

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr, reportHelp)
	var lf logFlags
	lf.define(fs, "the report", "rotated files and several instances' logs, any order")
	var keys multiFlag
	fs.Var(&keys, "key", "public `key` (signing.pub) to verify the checkpoints with (repeat, one per instance)")
	format := fs.String("format", "text", "`format`: text, json, html or pdf")
	page := fs.String("page", "A4", "PDF page `size`: A4 or Letter")
	schema := fs.Bool("schema", false, "print the JSON Schema of -format json and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *schema {
		_, err := stdout.Write(report.Schema())
		return err
	}
	render, err := reportRenderer(*format, *page, lf.out, stdout)
	if err != nil {
		return exit(2, err)
	}
	r, err := lf.write(fs, "report", keys, render, stdout, stderr)
	if err != nil {
		return err
	}
	return tamperedExit(r, stderr)
}

const inventoryHelp = `Usage: parapet inventory -log FILE [-log FILE ...] [-since T] [-until T] [-format text|json|csv] [-o OUT]
       parapet inventory -c CONFIG [...]

The legacy inventory alone: every peer that offered TLS below 1.2, SIP without TLS
where its zone requires TLS, plain RTP, a weak or 32-bit-tag SRTP suite, or no valid
certificate where one was asked, with its address, device (User-Agent or Server) and
certificate, when it was first and last seen, how often, what exactly it offered, and
what to do. Worst first. T as for parapet report; -c reads the log the configuration
names.

The log is verified on the way; what verification finds (an altered line, records
left out) is printed on stderr as a warning, and parapet report and parapet verify
say more. Exit status 0 when written, 2 on usage or I/O errors.`

func cmdInventory(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inventory", stderr, inventoryHelp)
	var lf logFlags
	lf.define(fs, "the inventory", "rotated files too")
	format := fs.String("format", "text", "`format`: text, json or csv")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var render func(io.Writer, *report.Report) error
	switch *format {
	case "text":
		render = report.WriteInventoryText
	case "csv":
		render = report.WriteInventoryCSV
	case "json":
		render = report.WriteInventoryJSON
	default:
		return exit(2, fmt.Errorf("unknown -format %q (want text, json or csv)", *format))
	}
	r, err := lf.write(fs, "inventory", nil, render, stdout, stderr)
	if err != nil {
		return err
	}
	// The inventory has no room for what the report says about its
	// sources: say it on stderr, so that an empty list from a damaged or
	// altered log is not taken for a clean bill.
	for _, s := range r.Sources {
		for _, n := range s.Notes {
			fmt.Fprintf(stderr, "parapet: warning: %s: %s\n", s.Name, n)
		}
		if v := s.Verification; v != nil && !v.Intact {
			fmt.Fprintf(stderr, "parapet: warning: %s does not verify: %s (parapet report and verify say more)\n", s.Name, v.Problem)
		} else if v != nil && v.Records == 0 {
			fmt.Fprintf(stderr, "parapet: warning: %s holds no record\n", s.Name)
		}
	}
	return nil
}

// logFlags are the flags report and inventory share: which logs, the
// period, where the output goes.
type logFlags struct {
	logs         multiFlag
	config       string
	since, until timeFlag
	out          string
	noProgress   bool
}

func (lf *logFlags) define(fs *flag.FlagSet, what, which string) {
	fs.Var(&lf.logs, "log", "compliance log `file` (repeat; "+which+")")
	fs.StringVar(&lf.config, "c", "", "read the log (and, for keys, signing.pub) that config `file` names, when no -log is given")
	fs.Var(&lf.since, "since", "start of the period (`T`, inclusive)")
	fs.Var(&lf.until, "until", "end of the period (`T`, exclusive)")
	fs.StringVar(&lf.out, "o", "", "write "+what+" to `file` (default standard output)")
	fs.BoolVar(&lf.noProgress, "no-progress", false, "no progress bar, even on a terminal")
}

// write builds the report of the logs, verified with keys (the state
// directory's signing.pub with -c when none is given, for report), and
// writes it with render. Errors carry their exit status.
func (lf *logFlags) write(fs *flag.FlagSet, cmd string, keys []string, render func(io.Writer, *report.Report) error,
	stdout, stderr io.Writer) (*report.Report, error) {
	logs, keys, err := logsFromConfig(lf.config, lf.logs, keys, cmd == "report", stderr)
	if err != nil {
		return nil, exit(2, err)
	}
	if len(logs) == 0 {
		fs.Usage()
		return nil, exit(2, fmt.Errorf("%s needs -log FILE or -c CONFIG", cmd))
	}
	opts, err := logOptions(keys, lf.since, lf.until)
	if err != nil {
		return nil, exit(2, err)
	}
	bar := newProgress(stderr, "reading logs", lf.noProgress)
	opts.Progress = bar.update
	r, err := report.FromLogs(logs, opts)
	bar.finish()
	if err != nil {
		return nil, exit(2, err)
	}
	if err := writeOutput(lf.out, stdout, func(w io.Writer) error { return render(w, r) }); err != nil {
		return nil, exit(2, err)
	}
	return r, nil
}

// logsFromConfig fills in, when -c is given without -log, the files of the
// log the configuration names and, when no key is given, the signing.pub of
// its state directory (if there is one).
func logsFromConfig(config string, logs, keys []string, findKey bool, stderr io.Writer) ([]string, []string, error) {
	if config == "" || len(logs) > 0 {
		return logs, keys, nil
	}
	cfg, err := readConfigFor(config, stderr)
	if err != nil {
		return nil, nil, err
	}
	files, err := compliance.ChainFiles(cfg.Compliance.Log)
	if err != nil {
		return nil, nil, err
	}
	if findKey && len(keys) == 0 {
		pub := filepath.Join(cfg.StateDir, "signing.pub")
		if _, err := os.Stat(pub); err == nil {
			keys = []string{pub}
		}
	}
	return files, keys, nil
}

// logOptions builds the report options shared by report and inventory.
func logOptions(keyFiles []string, since, until timeFlag) (report.LogOptions, error) {
	opts := report.LogOptions{Options: report.Options{Since: since.t, Until: until.t, Generator: "parapet " + parapetVersion()}}
	if !since.t.IsZero() && !until.t.IsZero() && !until.t.After(since.t) {
		return opts, fmt.Errorf("-until %s is not after -since %s", until.t.Format(time.RFC3339), since.t.Format(time.RFC3339))
	}
	for _, f := range keyFiles {
		pub, err := compliance.LoadPublicKey(f)
		if err != nil {
			return opts, err
		}
		opts.Keys = append(opts.Keys, ed25519.PublicKey(pub))
	}
	return opts, nil
}

// reportRenderer picks the renderer of a format.
func reportRenderer(format, page, out string, stdout io.Writer) (func(io.Writer, *report.Report) error, error) {
	switch format {
	case "text":
		return report.WriteText, nil
	case "json":
		return report.WriteJSON, nil
	case "html":
		return report.WriteHTML, nil
	case "pdf":
		switch strings.ToLower(page) {
		case "a4":
			page = "A4"
		case "letter":
			page = "Letter"
		default:
			return nil, fmt.Errorf("unknown -page %q (want A4 or Letter)", page)
		}
		if out == "" && isTerminal(stdout) {
			return nil, errors.New("a PDF is not for a terminal: give -o FILE")
		}
		return func(w io.Writer, r *report.Report) error { return report.WritePDF(w, r, page) }, nil
	}
	return nil, fmt.Errorf("unknown -format %q (want text, json, html or pdf)", format)
}

// writeOutput writes to stdout, or to the file at path. A regular file (new,
// or replacing one, or the one a symbolic link names) appears only once
// complete: it is written to a temporary file beside it, then renamed, so
// that a failed run never leaves half a report. Anything else at path (a
// device, a pipe: /dev/stdout, a FIFO) is written to as it is, never
// replaced.
func writeOutput(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return writeBuffered(stdout, write)
	}
	path, err := followLinks(path) // write through a link, never over it
	if err != nil {
		return err
	}
	mode := os.FileMode(0o640)
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			if fi.IsDir() {
				return fmt.Errorf("write %s: is a directory", path)
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			err = writeBuffered(f, write)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return err
		}
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	bw := bufio.NewWriter(tmp)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// followLinks returns the path a chain of symbolic links at path ends at,
// which need not exist yet.
func followLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", path)
}

func writeBuffered(w io.Writer, write func(io.Writer) error) error {
	bw := bufio.NewWriter(w)
	if err := write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// tamperedExit is exit status 1 when a chain failed verification, so that a
// script producing reports notices (as with parapet verify).
func tamperedExit(r *report.Report, stderr io.Writer) error {
	bad := 0
	for _, s := range r.Sources {
		if v := s.Verification; v != nil && !v.Intact {
			bad++
			fmt.Fprintf(stderr, "parapet: %s: TAMPERED: %s\n", s.Name, v.Problem)
		}
	}
	if bad > 0 {
		return exit(1, nil)
	}
	return nil
}

// timeFlag is a point in time given as RFC 3339, a date, or a duration
// before now ("24h", "7d").
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(s string) error {
	t, err := parseWhen(s, time.Now())
	if err != nil {
		return err
	}
	f.t = t
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress is a progress bar on a terminal, nothing elsewhere.
type progress struct {
	bar *progressbar.ProgressBar
}

func newProgress(stderr io.Writer, desc string, off bool) *progress {
	p := &progress{}
	if off || !isTerminal(stderr) {
		return p
	}
	p.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true))
	return p
}

func (p *progress) update(done, total int64) {
	if p.bar == nil {
		return
	}
	if p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
