package configs

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/parapet-sbc/parapet/topology"
)

// registerBlock is the HCL form of a route's register block.
type registerBlock struct {
	Registrar *string   `hcl:"registrar,optional"`
	AOR       *string   `hcl:"aor,optional"`
	Expires   *string   `hcl:"expires,optional"`
	Body      hcl.Body  `hcl:",body"`
	DefRange  hcl.Range `hcl:",def_range"`
}

// Registration lifetimes a register block may ask for: RFC 3261 section
// 10.2.1.1 suggests 3600 s; below a minute a trunk would spend itself on
// refreshes (a registrar's grant may still be shorter).
const (
	defaultRegisterExpires = time.Hour
	minRegisterExpires     = time.Minute
)

// register converts a route's register block. targetOK says whether the
// route's target parsed (the default registrar).
func (l *loader) register(rt *topology.Route, rb *registerBlock, diags hcl.Diagnostics, targetOK bool) *topology.Register {
	s := newScope(rb.Body, rb.DefRange, diags)
	r := &topology.Register{Registrar: rt.Target, Expires: defaultRegisterExpires}
	if rb.Registrar != nil && s.ok("registrar") {
		t, err := parseTarget(*rb.Registrar)
		if err != nil {
			l.errorf(s.value("registrar"), "invalid registrar", "Registrar %q: %s.", *rb.Registrar, err)
		} else {
			r.Registrar, targetOK = t, true
		}
	}
	if d, ok := l.duration(s, "expires", rb.Expires, `"3600s" or "1h"`, minRegisterExpires,
		"a registration asked for less than a minute would be refreshed all the time; the registrar may grant less on its own."); ok {
		r.Expires = d
	}
	switch {
	case rb.AOR != nil && s.ok("aor"):
		user, host, err := parseAOR(*rb.AOR)
		if err != nil {
			l.errorf(s.value("aor"), "invalid aor", "aor %q: %s; write it as sip:USER@DOMAIN.", *rb.AOR, err)
		}
		r.AOR = "sip:" + user + "@" + host
	case rt.Auth != nil && rt.Auth.Username != "" && targetOK:
		r.AOR = "sip:" + rt.Auth.Username + "@" + hostForURI(r.Registrar.Host)
	case rt.Auth == nil && !s.has("aor"):
		l.errorf(rb.DefRange, "register without aor or auth",
			"Route %q registers, but names no address of record: set aor (sip:USER@DOMAIN) or an auth block, whose username is then the registered user.", rt.Name)
	}
	return r
}

// parseAOR splits sip:USER@HOST (or sips:) into its user and host.
func parseAOR(s string) (user, host string, err error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || (!strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips")) {
		return "", "", fmt.Errorf("want a sip: URI")
	}
	user, host, ok = strings.Cut(rest, "@")
	if !ok || user == "" {
		return "", "", fmt.Errorf("missing user part")
	}
	if strings.ContainsAny(user, ":;?<> \"") || strings.ContainsAny(host, ";?<> \"") {
		return "", "", fmt.Errorf("parameters, headers and passwords are not allowed")
	}
	h, _, err := splitHostPort(host)
	if err != nil {
		return "", "", err
	}
	if err := checkHost(h); err != nil {
		return "", "", err
	}
	return user, host, nil
}

// hostForURI writes an IPv6 literal in brackets.
func hostForURI(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

// secretFile checks a file holding a secret: it must exist and, outside
// Windows, be readable by its owner only (as the pseudonym key). It
// returns the resolved path, or "" after an error.
func (l *loader) secretFile(s *scope, attr, p string) string {
	abs := l.checkFile(s, attr, p)
	if abs == "" || runtime.GOOS == "windows" {
		return abs
	}
	if fi, err := os.Stat(abs); err == nil && fi.Mode().Perm()&0o077 != 0 {
		l.errorf(s.value(attr), attr+" readable by others",
			"%s %q is accessible to group or others (mode %04o); a password file must be readable by its owner only: run chmod 600 on it.", attr, p, fi.Mode().Perm())
		return ""
	}
	return abs
}
