package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr, "Usage: parapet check [-c FILE]\n\nValidate a config: every error with file:line:column in one pass, then\nwarnings for weak choices; certificates and keys are loaded too.\nExit status 0 when it would run, 2 on errors.")
	file := fs.String("c", "", "config `file` (HCL); empty: the embedded lab default")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*file, stderr)
	if err != nil {
		return err
	}
	// Load every certificate, key and CA as run would.
	var warn strings.Builder
	log := slog.New(slog.NewTextHandler(&warn, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if _, err := zoneTLS(cfg, log); err != nil {
		return exit(2, err)
	}
	if warn.Len() > 0 {
		fmt.Fprint(stderr, warn.String())
	}
	fmt.Fprintf(stdout, "%s: OK (%d zones, %d routes, policy %s)\n", cfg.Source, len(cfg.Zones), len(cfg.Routes), cfg.Hash)
	return nil
}
