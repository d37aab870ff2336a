package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", stderr, "Usage: parapet check [-c FILE] [-print]\n\nValidate a config: every error with file:line:column in one pass, then\nwarnings for weak choices; certificates and keys are loaded too, and\nnothing is created. It prints the policy hash records will carry (over\nthe configuration and the certificates' fingerprints); -print shows the\ncanonical policy it covers first, as JSON.\nExit status 0 when it would run, 2 on errors; 1 when -print cannot know\nthe policy yet (the lab PKI does not exist).")
	file := fs.String("c", "", "config `file` (HCL); empty: the embedded lab default")
	printPolicy := fs.Bool("print", false, "print the canonical policy the policy hash covers (JSON), then the hash")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := readConfig(*file, stderr)
	if err != nil {
		return err
	}
	// Load every certificate, key and CA as run would, creating nothing.
	var warn strings.Builder
	log := slog.New(slog.NewTextHandler(&warn, &slog.HandlerOptions{Level: slog.LevelWarn}))
	zones, unknown, err := zoneTLS(cfg, log, false)
	if err != nil {
		return exit(2, err)
	}
	if warn.Len() > 0 {
		fmt.Fprint(stderr, warn.String())
	}
	summary := fmt.Sprintf("%s: OK (%d zones, %d routes", cfg.Source, len(cfg.Zones), len(cfg.Routes))
	if unknown != "" {
		// A hash over what run would create is not knowable: say so
		// rather than print one that records will not carry.
		fmt.Fprintf(stdout, "%s; policy hash not known yet: %s)\n", summary, unknown)
		if *printPolicy {
			return exit(1, errors.New("no canonical policy to print before the certificates exist"))
		}
		return nil
	}
	pol, err := cfg.Policy(trustOf(zones))
	if err != nil {
		return exit(2, err)
	}
	if *printPolicy {
		fmt.Fprintf(stdout, "%s\n", pol.Indented())
	}
	fmt.Fprintf(stdout, "%s, policy %s)\n", summary, pol.Hash)
	return nil
}
