package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/configs"
	"github.com/parapet-sbc/parapet/topology"
)

// loadConfig loads FILE, or the embedded lab default when path is empty.
// The lab default refers to the lab CA in its state directory, so the lab
// PKI is created (once) before it is loaded.
func loadConfig(path string, stderr io.Writer) (*configs.Config, error) {
	if path == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if _, err := certs.EnsureLab(filepath.Join(cwd, "parapet-state", "certs")); err != nil {
			return nil, fmt.Errorf("lab certificates: %w", err)
		}
	}
	return readConfig(path, stderr)
}

// readConfig loads FILE, or the embedded lab default (with the working
// directory as its base) when path is empty, and creates nothing.
// readConfigFor reads a configuration for a command that only looks things
// up in it (report, inventory, records, audit: the log, the keys, the
// zones). Its warnings are for check and run; they are shown only along
// with its errors.
func readConfigFor(path string, stderr io.Writer) (*configs.Config, error) {
	var buf bytes.Buffer
	cfg, err := readConfig(path, &buf)
	if err != nil {
		stderr.Write(buf.Bytes())
	}
	return cfg, err
}

func readConfig(path string, stderr io.Writer) (*configs.Config, error) {
	var cfg *configs.Config
	var diags configs.Diagnostics
	if path == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		name, src := configs.LabDefault()
		cfg, diags = configs.LoadBytes(name, src, configs.LoadOptions{BaseDir: cwd, Version: parapetVersion()})
	} else {
		cfg, diags = configs.Load(path, configs.LoadOptions{Version: parapetVersion()})
	}
	if len(diags) > 0 {
		diags.Format(stderr)
	}
	if diags.HasErrors() {
		return nil, exit(2, fmt.Errorf("%d configuration error(s)", len(diags.Errors())))
	}
	return cfg, nil
}

// configName is how the compliance log names cfg's source: the absolute
// path of its file, or "embedded:lab.hcl".
func configName(cfg *configs.Config) string {
	if cfg.Source == configs.LabName {
		return cfg.Source
	}
	if abs, err := filepath.Abs(cfg.Source); err == nil {
		return abs
	}
	return cfg.Source
}

// tlsOptions is zone z's TLS settings as certs takes them (without the lab
// PKI, which the caller finds or makes).
func tlsOptions(z *topology.Zone) certs.Options {
	t := z.TLS
	return certs.Options{
		Zone:       z.Policy.Name,
		MinVersion: uint16(t.MinVersion),
		CertFile:   t.CertFile,
		KeyFile:    t.KeyFile,
		CAFile:     t.CAFile,
		VerifyPeer: t.VerifyPeer,
		ClientAuth: t.ClientAuth.String(),
		Ciphers:    t.Ciphers,
		ServerName: t.ServerName,
	}
}

// labHosts lists the names zone z's lab certificate must cover besides
// loopback: its listener addresses and its advertised name.
func labHosts(z *topology.Zone) []string {
	var hosts []string
	for _, l := range z.Listen {
		if !l.Addr.Addr().IsUnspecified() {
			hosts = append(hosts, l.Addr.Addr().String())
		}
	}
	if z.Advertise != "" {
		hosts = append(hosts, z.Advertise)
	}
	return hosts
}

// zoneTLS builds the TLS material of every zone that has some. With
// create (run), it makes the lab PKI where a zone uses it. Without (check),
// it creates nothing: a zone whose lab certificate or lab CA does not exist
// yet, or that run would renew, is left out, and unknown says why.
func zoneTLS(cfg *configs.Config, log *slog.Logger, create bool) (zones map[string]*certs.Zone, unknown string, err error) {
	out := map[string]*certs.Zone{}
	labDir := filepath.Dir(filepath.Join(cfg.StateDir, configs.LabCAFile))
	if cfg.NeedsLabCA && create {
		// A zone trusts the lab CA, which does not exist yet: make the lab
		// PKI, as the embedded default does.
		if _, err := certs.EnsureLab(labDir); err != nil {
			return nil, "", fmt.Errorf("lab certificates: %w", err)
		}
	}
	for i := range cfg.Zones {
		z := &cfg.Zones[i]
		if z.TLS == nil {
			continue
		}
		opts := tlsOptions(z)
		switch {
		case z.TLS.Lab():
			var pki *certs.LabPKI
			if create {
				pki, err = certs.EnsureLab(labDir, labHosts(z)...)
				if err != nil {
					return nil, "", fmt.Errorf("zone %q: lab certificate: %w", z.Policy.Name, err)
				}
			} else if pki, err = certs.FindLab(labDir, labHosts(z)...); err != nil {
				unknown = fmt.Sprintf("zone %q uses the lab PKI in %s, which parapet run has yet to create or renew", z.Policy.Name, labDir)
				continue
			}
			opts.Lab = pki
			log.Warn("zone uses the self-signed lab certificate; not for production", "zone", z.Policy.Name, "dir", pki.Dir)
		case cfg.NeedsLabCA && !create && opts.CAFile == filepath.Join(cfg.StateDir, configs.LabCAFile):
			unknown = fmt.Sprintf("zone %q trusts the lab CA %s, which parapet run has yet to create", z.Policy.Name, opts.CAFile)
			continue
		}
		zt, err := certs.NewZone(opts)
		if err != nil {
			return nil, "", err
		}
		if w := zt.Expiring(time.Now(), 30*24*time.Hour); w != "" {
			log.Warn("certificate expiry", "zone", z.Policy.Name, "warning", w)
		}
		out[z.Policy.Name] = zt
	}
	return out, unknown, nil
}

// trustOf is the trust material of zones, as the policy hash takes it.
func trustOf(zones map[string]*certs.Zone) configs.Trust {
	out := configs.Trust{}
	for name, z := range zones {
		out[name] = zoneTrust(z.Trust())
	}
	return out
}

func zoneTrust(t certs.Trust) configs.ZoneTrust { return configs.ZoneTrust{Cert: t.Cert, CAs: t.CAs} }

// instance is a running parapet: its server, log and TLS material.
type instance struct {
	cfg    *configs.Config
	log    *slog.Logger
	srv    *b2bua.Server
	writer *compliance.Writer
	// journal keeps the live calls on disk, for the next start to record
	// if this run does not stop cleanly.
	journal *compliance.Journal
	tls     map[string]*certs.Zone
	admin   *http.Server
	pseudo  *compliance.Pseudonymizer

	// name is the configuration's name in the compliance log (configName).
	name string
	// policy is the canonical policy in force, with its hash: cfg and the
	// certificates in tls.
	policy configs.Policy
	// locks are held while parapet runs: one parapet per state directory
	// and per compliance log (two would fork the log's chain and share
	// the journal).
	locks []*os.File
}

// start builds everything from cfg and starts serving.
func start(ctx context.Context, cfg *configs.Config, log *slog.Logger) (_ *instance, err error) {
	in := &instance{cfg: cfg, name: configName(cfg), log: log}
	defer func() {
		if err != nil {
			in.unlock()
		}
	}()
	if err := in.lock(); err != nil {
		return nil, err
	}
	if in.tls, _, err = zoneTLS(cfg, log, true); err != nil {
		return nil, err
	}
	if in.policy, err = cfg.Policy(trustOf(in.tls)); err != nil {
		return nil, fmt.Errorf("policy hash: %w", err)
	}
	signer, err := compliance.LoadOrCreateSigningKey(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("compliance log signing key: %w", err)
	}
	// parapet creates the state directory 0700; one made beforehand is left
	// as it is (its owner may have reasons), but said.
	if st, err := os.Stat(cfg.StateDir); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("the state directory is open to other users; parapet's keys in it are 0600, but chmod 700 keeps even their names private",
			"dir", cfg.StateDir, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
	}
	// The previous run's live calls are read first; OpenWriter records
	// those that have no record (an unclean stop) before opened, then
	// starts the journal afresh.
	if in.journal, err = compliance.OpenJournal(filepath.Join(cfg.StateDir, compliance.JournalFile), compliance.JournalOptions{}); err != nil {
		return nil, err
	}
	in.writer, err = compliance.OpenWriter(cfg.Compliance.Log, compliance.WriterOptions{Version: parapetVersion(), Signer: signer,
		RotateBytes: cfg.Compliance.RotateBytes, PolicyHash: in.policy.Hash, Config: in.name, Journal: in.journal})
	if err != nil {
		in.journal.Close()
		return nil, fmt.Errorf("compliance log: %w", err)
	}
	if u := in.writer.UncleanStop(); u != nil {
		log.Warn("the previous run did not stop cleanly; its live calls are recorded as unobserved",
			"calls_live", u.Live, "calls_unobserved", u.Unobserved, "detail", u.Detail)
	}
	closeLog := func() {
		in.writer.Close()
		in.journal.Close()
	}
	if cfg.Compliance.Pseudonymize {
		key, err := compliance.LoadOrCreateKey(filepath.Join(cfg.StateDir, "pseudonym.key"))
		if err != nil {
			closeLog()
			return nil, fmt.Errorf("pseudonymisation key: %w", err)
		}
		in.pseudo = compliance.NewPseudonymizer(key)
	}
	if in.srv, err = b2bua.New(in.b2buaConfig(cfg, in.policy.Hash)); err != nil {
		closeLog()
		return nil, err
	}
	if err := in.srv.Start(ctx); err != nil {
		closeLog()
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		if err := in.startAdmin(cfg.Admin.Listen); err != nil {
			in.stop(context.Background())
			return nil, err
		}
	}
	for _, z := range cfg.Zones {
		for t, a := range in.srv.Addrs(z.Policy.Name) {
			log.Info("listening", "zone", z.Policy.Name, "transport", t.String(), "addr", a.String())
		}
	}
	log.Info("parapet started", "version", parapetVersion(), "config", cfg.Source, "policy_hash", in.policy.Hash,
		"compliance_log", cfg.Compliance.Log)
	return in, nil
}

// b2buaConfig is cfg as the call engine takes it, under policy hash: the
// zones, routes and media block as configs loaded them, and what exists
// only while parapet runs (TLS configurations, the log, the journal).
func (in *instance) b2buaConfig(cfg *configs.Config, hash string) b2bua.Config {
	bc := b2bua.Config{
		Zones:         cfg.Zones,
		Routes:        cfg.Routes,
		Media:         cfg.Media,
		Limits:        cfg.Limits,
		Emergency:     cfg.Emergency,
		TLS:           map[string]b2bua.ZoneTLS{},
		PolicyHash:    hash,
		Sink:          in.writer,
		Journal:       in.journal,
		Pseudonymizer: in.pseudo,
		Logger:        in.log,
	}
	for _, z := range cfg.Zones {
		name := z.Policy.Name
		if zt := in.tls[name]; zt != nil {
			bc.TLS[name] = b2bua.ZoneTLS{Server: zt.ServerConfig(), Client: zt.ClientConfig()}
		} else {
			// A zone without any TLS settings still verifies what it dials
			// (system roots, TLS 1.2 floor).
			bc.TLS[name] = b2bua.ZoneTLS{Client: &tls.Config{MinVersion: tls.VersionTLS12}}
		}
	}
	return bc
}

// reload re-reads the certificates and, when parapet runs from a file, the
// configuration (SIGHUP). Policies, routes, the media timeouts and the
// certificates change for calls that start afterwards; anything bound at
// start (listeners, TLS settings, media ports, the log, the admin address)
// needs a restart, and so does a CA certificate that was not trusted at
// start (certs.Zone). A reload that cannot take effect as a whole changes
// nothing. Either way the compliance log says so: `reloaded` with the
// policy hashes before and after, or `reload_refused` with why.
func (in *instance) reload(path string) {
	cfg := in.cfg
	if path == "" {
		in.log.Info("running the embedded lab default: re-reading the certificates, nothing else")
	} else if cfg = in.reread(path); cfg == nil {
		return
	}

	// Every zone's certificates, or none: the policy in force must be one
	// whose hash a record can name.
	names := slices.Sorted(maps.Keys(in.tls))
	pending := make([]*certs.Pending, 0, len(names))
	trust := configs.Trust{}
	for _, name := range names {
		p, err := in.tls[name].Prepare()
		if err != nil {
			in.log.Error("configuration reload refused: the certificates do not load; the running configuration and certificates stay in force",
				"zone", name, "error", err)
			in.refused("certificates: " + err.Error())
			return
		}
		pending = append(pending, p)
		trust[name] = zoneTrust(p.Trust())
	}
	pol, err := cfg.Policy(trust)
	if err != nil {
		in.log.Error("configuration reload refused; the running configuration stays in force", "error", err)
		in.refused("policy hash: " + err.Error())
		return
	}
	bc := in.b2buaConfig(cfg, pol.Hash)
	commit := func() {
		for _, p := range pending {
			p.Commit()
		}
	}
	changed, err := in.srv.CheckReload(bc)
	if err != nil {
		in.log.Error("configuration reload refused; the running configuration stays in force", "config", in.name, "error", err)
		in.refused(err.Error())
		return
	}
	if !changed {
		// What was read has the fingerprints in force; the files may
		// still differ in what no policy decides (a certificate chain's
		// intermediates), which takes effect.
		commit()
		in.log.Info("configuration unchanged", "policy_hash", pol.Hash)
		return
	}
	// The record comes first, so that nothing judged or presented under
	// the new policy (a call, a handshake) is logged before the record
	// that announces it; nothing after it can refuse the reload.
	rec := &compliance.Record{Type: compliance.TypeLog, Log: &compliance.LogEvent{Event: compliance.LogReloaded,
		Detail: fmt.Sprintf("policy %s -> %s from %s", in.policy.Hash, pol.Hash, in.name), Version: parapetVersion(),
		Config: in.name, PrevPolicyHash: in.policy.Hash, PolicyHash: pol.Hash}}
	if err := in.writer.Append(rec); err != nil {
		in.log.Error("could not record the reload in the compliance log", "error", err)
	}
	commit()
	if err := in.srv.Reload(bc); err != nil {
		// CheckReload took bc: this cannot happen.
		in.log.Error("configuration reload failed after it was checked", "config", in.name, "error", err)
	}
	in.log.Info("configuration reloaded", "config", in.name, "policy_hash", pol.Hash, "previous", in.policy.Hash)
	for _, name := range names {
		if w := in.tls[name].Expiring(time.Now(), 30*24*time.Hour); w != "" {
			in.log.Warn("certificate expiry", "zone", name, "warning", w)
		}
	}
	in.cfg, in.policy = cfg, pol
}

// reread loads the configuration file path for a reload and has what
// cannot change while parapet runs judged: parapet's own settings here,
// what b2bua bound at start by b2bua, before any certificate is read. A
// file that does not load or needs a restart is logged, recorded as
// refused, and nil is returned.
func (in *instance) reread(path string) *configs.Config {
	// Each diagnostic is one log line in the FILE:LINE:COL form, which
	// log pipelines keep together (check prints the multi-line form).
	loaded, diags := configs.Load(path, configs.LoadOptions{Version: parapetVersion()})
	for _, d := range diags {
		if d.Severity == configs.SeverityError {
			in.log.Error("configuration error", "diagnostic", d.String())
		} else {
			in.log.Warn("configuration warning", "diagnostic", d.String())
		}
	}
	if errs := diags.Errors(); len(errs) > 0 {
		in.log.Error("configuration reload failed; the running configuration stays in force",
			"config", path, "errors", len(errs))
		first := errs[0]
		in.refused(fmt.Sprintf("%d configuration error(s); the first at %s:%d:%d: %s", len(errs), first.File, first.Line, first.Column, first.Summary))
		return nil
	}
	why := ""
	if what := processOnly(in.cfg, loaded); what != "" {
		why = what + " changed: restart needed"
	} else if _, err := in.srv.CheckReload(in.b2buaConfig(loaded, in.policy.Hash)); err != nil {
		// What b2bua bound at start is its to judge, before any
		// certificate is read.
		why = err.Error()
	}
	if why != "" {
		in.log.Error("configuration reload refused: "+why+"; the running configuration stays in force", "config", path)
		in.refused(why)
		return nil
	}
	return loaded
}

// refused records a reload that changed nothing: the policy in force is
// both the one before and the one after. why becomes one line of at most
// maxRefusedDetail bytes; it names files and settings, never their
// contents (certs' errors hold no key material).
func (in *instance) refused(why string) {
	rec := &compliance.Record{Type: compliance.TypeLog, Log: &compliance.LogEvent{Event: compliance.LogReloadRefused,
		Detail: oneLine(why, maxRefusedDetail), Version: parapetVersion(),
		Config: in.name, PrevPolicyHash: in.policy.Hash, PolicyHash: in.policy.Hash}}
	if err := in.writer.Append(rec); err != nil {
		in.log.Error("could not record the refused reload in the compliance log", "error", err)
	}
}

// maxRefusedDetail bounds the detail of a reload_refused record.
const maxRefusedDetail = 300

// oneLine turns s into a single line of at most max bytes: control
// characters become spaces, runs of spaces one, and a longer text is cut at
// a character boundary and ends with "…".
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if len(s) <= max {
		return s
	}
	const more = "…"
	cut := max - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// processOnly names the first setting that differs between a and b, is
// parapet's own rather than the call engine's, and cannot change while
// parapet runs; or returns "". What b2bua was given at start (zones,
// listeners, TLS settings, the media sockets) b2bua.Server.CheckReload
// judges.
func processOnly(a, b *configs.Config) string {
	switch {
	case a.StateDir != b.StateDir:
		return "state_dir"
	case !reflect.DeepEqual(a.Compliance, b.Compliance):
		return "compliance block"
	case a.Admin != b.Admin:
		return "admin block"
	}
	return ""
}

// stop ends calls, stops listeners and closes the log.
// lock takes the state directory's and the compliance log's locks before
// anything is read or written there.
func (in *instance) lock() error {
	for _, path := range []string{filepath.Join(in.cfg.StateDir, "parapet.lock"), in.cfg.Compliance.Log + ".lock"} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		f, err := lockFile(path)
		if err != nil {
			return err
		}
		in.locks = append(in.locks, f)
	}
	return nil
}

// unlock releases the locks lock took.
func (in *instance) unlock() {
	for _, f := range in.locks {
		f.Close()
	}
	in.locks = nil
}

func (in *instance) stop(ctx context.Context) error {
	defer in.unlock()
	var errs []error
	if in.admin != nil {
		in.admin.Shutdown(ctx)
	}
	if in.srv != nil {
		if err := in.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := in.writer.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close compliance log: %w", err))
	}
	// After the log: the end entries of the last calls' records are
	// queued by now; a call whose record did not reach the log stays in
	// the journal for the next start to record.
	if err := in.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close live-call journal: %w", err))
	}
	return errors.Join(errs...)
}

func (in *instance) startAdmin(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(in.srv, in.journal))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if !in.srv.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	in.admin = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go in.admin.Serve(ln)
	in.log.Info("admin listening", "addr", ln.Addr().String())
	return nil
}
