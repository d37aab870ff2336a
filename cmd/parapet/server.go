package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/certs"
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/configs"
)

// loadConfig loads FILE, or the embedded lab default when path is empty.
// The lab default refers to the lab CA in its state directory, so the lab
// PKI is created (once) before it is loaded.
func loadConfig(path string, stderr io.Writer) (*configs.Config, error) {
	var cfg *configs.Config
	var diags configs.Diagnostics
	if path == "" {
		cwd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		if _, err := certs.EnsureLab(filepath.Join(cwd, "parapet-state", "certs")); err != nil {
			return nil, fmt.Errorf("lab certificates: %w", err)
		}
		name, src := configs.LabDefault()
		cfg, diags = configs.LoadBytes(name, src, configs.LoadOptions{BaseDir: cwd})
	} else {
		cfg, diags = configs.Load(path, configs.LoadOptions{})
	}
	if len(diags) > 0 {
		diags.Format(stderr)
	}
	if diags.HasErrors() {
		return nil, exit(2, fmt.Errorf("%d configuration error(s)", len(diags.Errors())))
	}
	return cfg, nil
}

// zoneTLS builds the TLS material of every zone that has some.
func zoneTLS(cfg *configs.Config, log *slog.Logger) (map[string]*certs.Zone, error) {
	out := map[string]*certs.Zone{}
	if cfg.NeedsLabCA {
		// A zone trusts the lab CA, which does not exist yet: make the lab
		// PKI, as the embedded default does.
		if _, err := certs.EnsureLab(filepath.Dir(filepath.Join(cfg.StateDir, configs.LabCAFile))); err != nil {
			return nil, fmt.Errorf("lab certificates: %w", err)
		}
	}
	for _, z := range cfg.Zones {
		t := z.TLS
		if t == nil {
			continue
		}
		opts := certs.Options{
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
		if t.Lab() {
			var hosts []string
			for _, l := range z.Listen {
				if !l.Addr.Addr().IsUnspecified() {
					hosts = append(hosts, l.Addr.Addr().String())
				}
			}
			if z.Advertise != "" {
				hosts = append(hosts, z.Advertise)
			}
			pki, err := certs.EnsureLab(filepath.Join(cfg.StateDir, "certs"), hosts...)
			if err != nil {
				return nil, fmt.Errorf("zone %q: lab certificate: %w", z.Policy.Name, err)
			}
			opts.Lab = pki
			log.Warn("zone uses the self-signed lab certificate; not for production", "zone", z.Policy.Name, "dir", pki.Dir)
		}
		zt, err := certs.NewZone(opts)
		if err != nil {
			return nil, err
		}
		if w := zt.Expiring(time.Now(), 30*24*time.Hour); w != "" {
			log.Warn("certificate expiry", "zone", z.Policy.Name, "warning", w)
		}
		out[z.Policy.Name] = zt
	}
	return out, nil
}

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
	pseudo  func(string) string
}

// start builds everything from cfg and starts serving.
func start(ctx context.Context, cfg *configs.Config, log *slog.Logger) (*instance, error) {
	in := &instance{cfg: cfg, log: log}
	var err error
	if in.tls, err = zoneTLS(cfg, log); err != nil {
		return nil, err
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
		RotateBytes: cfg.Compliance.RotateBytes, Journal: in.journal})
	if err != nil {
		in.journal.Close()
		return nil, fmt.Errorf("compliance log: %w", err)
	}
	if u := in.writer.UncleanStop(); u != nil {
		log.Warn("the previous run did not stop cleanly; its live calls are recorded as unobserved",
			"calls_live", u.Live, "calls_recorded", u.Unobserved, "detail", u.Detail)
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
		in.pseudo = compliance.NewPseudonymizer(key).Token
	}
	if in.srv, err = b2bua.New(in.b2buaConfig(cfg)); err != nil {
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
	log.Info("parapet started", "version", parapetVersion(), "config", cfg.Source, "policy_hash", cfg.Hash,
		"compliance_log", cfg.Compliance.Log)
	return in, nil
}

// b2buaConfig is cfg as the call engine takes it.
func (in *instance) b2buaConfig(cfg *configs.Config) b2bua.Config {
	bc := b2bua.Config{
		Media: b2bua.MediaConfig{Address: cfg.Media.Address, Advertise: cfg.Media.Advertise,
			PortMin: cfg.Media.PortMin, PortMax: cfg.Media.PortMax, Timeout: cfg.Media.Timeout,
			HoldTimeout: cfg.Media.HoldTimeout},
		PolicyHash:   cfg.Hash,
		Sink:         in.writer,
		Journal:      in.journal,
		Pseudonymize: in.pseudo,
		Logger:       in.log,
		UserAgent:    "parapet/" + parapetVersion(),
	}
	for _, z := range cfg.Zones {
		bz := b2bua.Zone{Policy: z.Policy, Advertise: z.Advertise, Feedback: b2bua.Feedback(z.Feedback)}
		for _, l := range z.Listen {
			bz.Listen = append(bz.Listen, b2bua.Listener{Transport: l.Transport, Addr: l.Addr})
		}
		if zt := in.tls[z.Policy.Name]; zt != nil {
			bz.ServerTLS, bz.ClientTLS = zt.ServerConfig(), zt.ClientConfig()
		} else {
			// A zone without any TLS settings still verifies what it dials
			// (system roots, TLS 1.2 floor).
			bz.ClientTLS = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		bc.Zones = append(bc.Zones, bz)
	}
	for _, r := range cfg.Routes {
		br := b2bua.Route{Name: r.Name, From: r.From, To: r.To, Match: r.Match, MaxCalls: r.MaxCalls,
			Target: b2bua.Target{Host: r.Target.Host, Port: r.Target.Port, Transport: r.Target.Transport, Secure: r.Target.Secure}}
		if r.Auth != nil {
			br.Username = r.Auth.Username
			br.Password = os.Getenv(r.Auth.PasswordEnv)
		}
		bc.Routes = append(bc.Routes, br)
	}
	return bc
}

// reload re-reads the certificates and, when parapet runs from a file, the
// configuration (SIGHUP). Policies, routes and the media timeout change
// for calls that start afterwards; anything bound at start (listeners,
// TLS settings, media ports, the log, the admin address) needs a restart,
// and a file that changes it, or does not load, changes nothing.
func (in *instance) reload(path string) {
	in.reloadCerts()
	if path == "" {
		in.log.Info("running the embedded lab default: certificates reloaded, nothing else to re-read")
		return
	}
	// Each diagnostic is one log line in the FILE:LINE:COL form, which log
	// pipelines keep together (check prints the multi-line form).
	cfg, diags := configs.Load(path, configs.LoadOptions{})
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
		return
	}
	if what := restartOnly(in.cfg, cfg); what != "" {
		in.log.Error("configuration reload refused: "+what+" changed, which needs a restart; the running configuration stays in force",
			"config", path)
		return
	}
	if cfg.Hash == in.cfg.Hash {
		in.log.Info("configuration unchanged", "policy_hash", cfg.Hash)
		return
	}
	if err := in.srv.Reload(in.b2buaConfig(cfg)); err != nil {
		in.log.Error("configuration reload refused; the running configuration stays in force", "config", path, "error", err)
		return
	}
	rec := &compliance.Record{Type: compliance.TypeLog, Log: &compliance.LogEvent{Event: compliance.LogReloaded,
		Detail: fmt.Sprintf("policy %s -> %s from %s", in.cfg.Hash, cfg.Hash, path), Version: parapetVersion()}}
	if err := in.writer.Append(rec); err != nil {
		in.log.Error("could not record the reload in the compliance log", "error", err)
	}
	in.log.Info("configuration reloaded", "config", path, "policy_hash", cfg.Hash, "previous", in.cfg.Hash)
	in.cfg = cfg
}

// restartOnly names the first setting that differs between a and b and
// cannot change while parapet runs, or returns "".
func restartOnly(a, b *configs.Config) string {
	switch {
	case a.StateDir != b.StateDir:
		return "state_dir"
	case len(a.Zones) != len(b.Zones):
		return "the set of zones"
	case !reflect.DeepEqual(a.Media.Address, b.Media.Address) || !reflect.DeepEqual(a.Media.Advertise, b.Media.Advertise) ||
		a.Media.PortMin != b.Media.PortMin || a.Media.PortMax != b.Media.PortMax:
		return "the media address or ports"
	case !reflect.DeepEqual(a.Compliance, b.Compliance):
		return "the compliance block"
	case a.Admin != b.Admin:
		return "the admin block"
	}
	for i, z := range a.Zones {
		o := b.Zones[i]
		switch {
		case z.Policy.Name != o.Policy.Name:
			return "the set of zones"
		case !reflect.DeepEqual(z.Listen, o.Listen) || z.Advertise != o.Advertise:
			return fmt.Sprintf("zone %q listeners or advertise", z.Policy.Name)
		case !reflect.DeepEqual(z.TLS, o.TLS):
			return fmt.Sprintf("zone %q tls block", z.Policy.Name)
		}
	}
	return ""
}

// reloadCerts re-reads every zone's certificates (SIGHUP).
func (in *instance) reloadCerts() {
	for name, z := range in.tls {
		if err := z.Reload(); err != nil {
			in.log.Error("certificate reload failed; keeping the old ones", "zone", name, "error", err)
			continue
		}
		in.log.Info("certificates reloaded", "zone", name)
	}
}

// stop ends calls, stops listeners and closes the log.
func (in *instance) stop(ctx context.Context) error {
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
	mux.Handle("/metrics", metricsHandler(in.srv))
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
