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
	tls    map[string]*certs.Zone
	admin  *http.Server
}

// start builds everything from cfg and starts serving.
func start(ctx context.Context, cfg *configs.Config, log *slog.Logger) (*instance, error) {
	in := &instance{cfg: cfg, log: log}
	var err error
	if in.tls, err = zoneTLS(cfg, log); err != nil {
		return nil, err
	}
	in.writer, err = compliance.OpenWriter(cfg.Compliance.Log, compliance.WriterOptions{Version: parapetVersion(),
		RotateBytes: cfg.Compliance.RotateBytes})
	if err != nil {
		return nil, fmt.Errorf("compliance log: %w", err)
	}
	var pseudo func(string) string
	if cfg.Compliance.Pseudonymize {
		key, err := compliance.LoadOrCreateKey(filepath.Join(cfg.StateDir, "pseudonym.key"))
		if err != nil {
			in.writer.Close()
			return nil, fmt.Errorf("pseudonymisation key: %w", err)
		}
		pseudo = compliance.NewPseudonymizer(key).Token
	}
	bc := b2bua.Config{
		Media: b2bua.MediaConfig{Address: cfg.Media.Address, Advertise: cfg.Media.Advertise,
			PortMin: cfg.Media.PortMin, PortMax: cfg.Media.PortMax, Timeout: cfg.Media.Timeout},
		PolicyHash:   cfg.Hash,
		Sink:         in.writer,
		Pseudonymize: pseudo,
		Logger:       log,
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
		br := b2bua.Route{Name: r.Name, From: r.From, To: r.To, Match: r.Match,
			Target: b2bua.Target{Host: r.Target.Host, Port: r.Target.Port, Transport: r.Target.Transport, Secure: r.Target.Secure}}
		if r.Auth != nil {
			br.Username = r.Auth.Username
			br.Password = os.Getenv(r.Auth.PasswordEnv)
		}
		bc.Routes = append(bc.Routes, br)
	}
	if in.srv, err = b2bua.New(bc); err != nil {
		in.writer.Close()
		return nil, err
	}
	if err := in.srv.Start(ctx); err != nil {
		in.writer.Close()
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
