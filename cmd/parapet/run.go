package main

import (
	"context"

	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parapet-sbc/parapet/b2bua"
)

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q (text or json)", format)
}

// shutdownTimeout bounds the orderly end of live calls at SIGINT/SIGTERM.
const shutdownTimeout = 30 * time.Second

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", stderr, "Usage: parapet run [-c FILE]\n\nServe. Without -c, the embedded lab default runs on loopback\n(state, certificates and the compliance log in ./parapet-state).")
	file := fs.String("c", "", "config `file` (HCL); empty: the embedded lab default")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		return exit(2, err)
	}
	b2bua.SetProcessLogger(log)
	// SIGHUP is caught before anything starts: its default action ends the
	// process, and a reload asked for while starting is done once started.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	cfg, err := loadConfig(*file, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	in, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	for {
		select {
		case <-hup:
			in.reload(*file)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down: ending live calls")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := in.stop(sctx); err != nil {
		return err
	}
	log.Info("stopped; compliance log closed", "log", cfg.Compliance.Log)
	return nil
}
