package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"

	"github.com/parapet-sbc/parapet/audit"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/configs"
)

const auditHelp = `Usage: parapet audit [-c FILE] [-format text|json|html|pdf] [-page A4|Letter] [-o OUT] CAPTURE...

Judge captured traffic with the policy parapet enforces, before parapet is deployed or
beside it: pcap and pcapng files (read in Go, no libpcap) and plain-text SIP traces
(messages pasted from sngrep, a proxy's siptrace or a softphone log). SIP in clear over
UDP and TCP is rebuilt into dialogs with their SDP offers and answers; TLS handshakes
are read on any port (versions offered and chosen, cipher, SNI, certificates where the
handshake shows them); media flows are classified RTP or SRTP from the SDP and from the
packets themselves. The result is the same report as parapet report, legacy inventory
included.

Without -c, every leg is judged as external: SIP over TLS 1.2+ and SRTP required. With
-c, legs that touch a zone's listeners or come from its peers are judged by that zone's
policy, and numbers and Call-IDs are pseudonymised with parapet's own key when its
state directory holds one (so they match parapet's records); otherwise with a key made
for this run.

Exit status 0 when the report is written, 1 when it is written but a capture could
not be read to its end (truncated or corrupt: the report covers what was read), 2 on
usage or I/O errors and for files that are not captures.`

func cmdAudit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit", stderr, auditHelp)
	config := fs.String("c", "", "judge legs by the zones of config `file` (default: every leg external)")
	format := fs.String("format", "text", "`format`: text, json, html or pdf")
	page := fs.String("page", "A4", "PDF page `size`: A4 or Letter")
	out := fs.String("o", "", "write the report to `file` (default standard output)")
	noProgress := fs.Bool("no-progress", false, "no progress bar, even on a terminal")
	captures, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(captures) == 0 {
		fs.Usage()
		return exit(2, errors.New("audit needs a CAPTURE file"))
	}
	render, err := reportRenderer(*format, *page, *out, stdout)
	if err != nil {
		return exit(2, err)
	}
	opts := audit.Options{}
	policyHash, policyNote := "", "judged as external: no -c configuration given"
	if *config != "" {
		cfg, err := readConfigFor(*config, stderr)
		if err != nil {
			return exit(2, err)
		}
		for _, z := range cfg.Zones {
			az := audit.Zone{Policy: z.Policy}
			for _, l := range z.Listen {
				az.Listen = append(az.Listen, netip.AddrPortFrom(l.Addr.Addr(), l.Addr.Port()))
			}
			opts.Zones = append(opts.Zones, az)
		}
		policyHash, policyNote = auditPolicyHash(cfg)
		key, err := compliance.LoadKey(filepath.Join(cfg.StateDir, "pseudonym.key"))
		switch {
		case err == nil:
			opts.Pseudonymizer = compliance.NewPseudonymizer(key)
		case !errors.Is(err, iofs.ErrNotExist):
			return exit(2, err)
		}
	}

	b := report.NewBuilder(report.Options{Kind: report.KindCapture, Generator: "parapet " + parapetVersion()})
	var merged *report.Capture
	var partial []error
	for _, path := range captures {
		bar := newProgress(stderr, "reading "+filepath.Base(path), *noProgress)
		opts.Progress = bar.update
		idx := b.AddSource(report.Source{Name: path, Files: []string{path}})
		src, capt, err := audit.Analyze(path, opts, func(r *compliance.Record) {
			if r.Call != nil {
				r.Call.PolicyHash = policyHash
			}
			b.Add(idx, r)
		})
		bar.finish()
		b.SetSourceDetail(idx, src.SHA256, append([]string{policyNote}, src.Notes...))
		switch {
		case errors.Is(err, audit.ErrNotCapture):
			return exit(2, err)
		case err != nil && capt == nil:
			return exit(2, err)
		case err != nil:
			partial = append(partial, err)
		}
		merged = mergeCapture(merged, capt)
	}
	b.SetCapture(merged)
	r := b.Report()
	if err := writeOutput(*out, stdout, func(w io.Writer) error { return render(w, r) }); err != nil {
		return exit(2, err)
	}
	if len(partial) > 0 {
		for _, err := range partial {
			fmt.Fprintf(stderr, "parapet: %v (the report covers what was read)\n", err)
		}
		return exit(1, nil)
	}
	return nil
}

// auditPolicyHash is the policy hash of cfg, as parapet check prints it and
// records carry it, with a note naming it for the report's sources. Loading
// the certificates creates nothing; when the hash is not knowable (the lab
// PKI does not exist yet), the note says so.
func auditPolicyHash(cfg *configs.Config) (hash, note string) {
	zones, unknown, err := zoneTLS(cfg, slog.New(slog.DiscardHandler), false)
	if err == nil && unknown == "" {
		pol, perr := cfg.Policy(trustOf(zones))
		if perr == nil {
			return pol.Hash, fmt.Sprintf("judged by the zones of %s, policy %s", cfg.Source, pol.Hash)
		}
		err = perr
	}
	why := unknown
	if err != nil {
		why = err.Error()
	}
	return "", fmt.Sprintf("judged by the zones of %s (policy hash not known: %s)", cfg.Source, why)
}

// parseInterspersed parses flags given before, between or after the
// positional arguments (parapet audit a.pcap -format json b.pcap), which
// flag.Parse alone stops at.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exit(0, nil)
			}
			return nil, exit(2, nil)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// mergeCapture adds what one capture showed to what the others did,
// keeping the lists within audit's limit.
func mergeCapture(into, c *report.Capture) *report.Capture {
	if c == nil {
		return into
	}
	if into == nil {
		cp := *c
		return &cp
	}
	into.Packets += c.Packets
	into.Undecoded += c.Undecoded
	into.Dialogs += c.Dialogs
	into.Omitted += c.Omitted
	for _, h := range c.Handshakes {
		if len(into.Handshakes) < audit.MaxListed {
			into.Handshakes = append(into.Handshakes, h)
		} else {
			into.Omitted++
		}
	}
	for _, f := range c.Flows {
		if len(into.Flows) < audit.MaxListed {
			into.Flows = append(into.Flows, f)
		} else {
			into.Omitted++
		}
	}
	return into
}
