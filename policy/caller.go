package policy

import "strings"

// CallerFacts are what the admission of a call from a zone whose callers
// must be registered through parapet (docs/config.md, zone › registrar ›
// callers) is judged by.
type CallerFacts struct {
	// From is the user@host of the request's From URI.
	From string
	// Registered are the addresses of record (user@host) with a live
	// binding on the connection the request came over: the same TCP or
	// TLS connection, or, over UDP, the same source address at the same
	// listener. Empty when none is.
	Registered []string
}

// registeredCaller is the admission decision for a request whose source
// and signaling the zone admits (allowed with reason): allowed when the
// zone does not tie callers to registrations (f nil) or when f.From is an
// address of record registered on the request's connection; else rejected
// with 403 and RuleNotRegistered (would_reject in observe mode).
func registeredCaller(z *Zone, f *CallerFacts, reason string) Decision {
	if f == nil {
		return allowed(StageAdmission, z, reason)
	}
	if len(f.Registered) == 0 {
		return reject(StageAdmission, z, true, RuleNotRegistered, StatusForbidden, []Control{ControlAccess},
			"zone %q takes calls only from users registered through parapet, and no user is registered on the connection the call came over", z.Name)
	}
	for _, aor := range f.Registered {
		if SameAOR(f.From, aor) {
			return allowed(StageAdmission, z, reason+"; the caller is registered on this connection")
		}
	}
	return reject(StageAdmission, z, true, RuleNotRegistered, StatusForbidden, []Control{ControlAccess},
		"zone %q takes calls only from users registered through parapet, and the call's From is not an address of record registered on the connection it came over", z.Name)
}

// SameAOR reports whether two user@host addresses of record are the same
// as RFC 3261 section 19.1.4 compares URIs: the user part exactly, the
// host without regard to case.
func SameAOR(a, b string) bool {
	au, ah, aok := strings.Cut(a, "@")
	bu, bh, bok := strings.Cut(b, "@")
	return aok && bok && au == bu && strings.EqualFold(ah, bh)
}
