package report

import (
	"fmt"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// findingOrder is the order findings are counted in.
var findingOrder = []policy.FindingStatus{
	policy.StatusSatisfied, policy.StatusViolated, policy.StatusNotRequired, policy.StatusNotApplicable,
}

// judge gives each control of the catalogue its status over the period,
// with the evidence behind it.
func (b *Builder) judge(r *Report) []ControlResult {
	out := make([]ControlResult, 0, len(compliance.Catalogue))
	for _, spec := range compliance.Catalogue {
		cr := ControlResult{ID: string(spec.Control), Title: spec.Control.Title(), Requirement: spec.Requirement,
			Basis: spec.Evidence, Evidence: []string{},
			Findings: []Count{}, References: make([]Reference, 0, len(spec.References))}
		for _, ref := range spec.References {
			cr.References = append(cr.References, Reference{ID: ref.ID, Title: ref.Title})
		}
		fs := b.findings[spec.Control]
		for _, st := range findingOrder {
			if n := fs[st]; n > 0 {
				cr.Findings = append(cr.Findings, Count{Name: string(st), Count: n})
			}
		}
		switch spec.Control {
		case policy.ControlAccess:
			b.judgeAccess(r, &cr)
		case policy.ControlAudit:
			b.judgeAudit(r, &cr)
		case policy.ControlIntegrity:
			b.judgeIntegrity(r, &cr)
		case policy.ControlAuthentication:
			b.judgeAuthentication(r, &cr)
		case policy.ControlTransmission, policy.ControlEncryption:
			b.judgeTransmission(r, &cr, spec.Control)
		case policy.ControlTransitIntegrity:
			b.judgeTransitIntegrity(r, &cr)
		case policy.ControlDeidentification:
			b.judgeDeidentification(r, &cr)
		}
		for _, c := range counts(b.violations[spec.Control])[:min(3, len(b.violations[spec.Control]))] {
			cr.add("violated on %d %s: %s", c.Count, plural(c.Count, "leg", "legs"), c.Name)
		}
		out = append(out, cr)
	}
	return out
}

func (cr *ControlResult) add(format string, args ...any) {
	cr.Evidence = append(cr.Evidence, fmt.Sprintf(format, args...))
}

func (cr *ControlResult) set(status, format string, args ...any) {
	cr.Status = status
	cr.Summary = fmt.Sprintf(format, args...)
}

func (b *Builder) findingsOf(c policy.Control, st policy.FindingStatus) int { return b.findings[c][st] }

func (b *Builder) event(kind compliance.ConnEventKind) (int, uint64) {
	if ec := b.events[string(kind)]; ec != nil {
		return ec.Count, ec.Folded
	}
	return 0, 0
}

func (b *Builder) ruleCount(v policy.Verdict, rule string) int {
	if rc := b.verdicts[v][rule]; rc != nil {
		return rc.Count
	}
	return 0
}

func (b *Builder) judgeAccess(_ *Report, cr *ControlResult) {
	sat := b.findingsOf(policy.ControlAccess, policy.StatusSatisfied)
	viol := b.findingsOf(policy.ControlAccess, policy.StatusViolated)
	refused, folded := b.event(compliance.EventSourceRefused)
	summaries, counted := b.event(compliance.EventOutsiders)
	refused, folded = refused+summaries, folded+counted
	if sat > 0 {
		cr.add("%d %s admitted from within the zone's peers", sat, plural(sat, "call was", "calls were"))
	}
	if refused > 0 {
		cr.add("%d %s from outside a zone's peers refused and recorded (%d more folded or summed into those records)",
			refused, plural(refused, "request", "requests"), folded)
	}
	if viol > 0 {
		cr.add("%d %s from outside a zone's peers let through by an observe-mode zone", viol, plural(viol, "call", "calls"))
	}
	switch {
	case viol > 0:
		cr.set(StatusNeedsAttention, "%d %s from outside the zones' peers went through (observe mode).", viol, plural(viol, "call", "calls"))
	case sat > 0 || refused > 0:
		cr.set(StatusSatisfied, "Only the zones' peers were admitted; requests from elsewhere were refused.")
	default:
		cr.set(StatusNotApplicable, "No request reached parapet in this period.")
	}
}

func (b *Builder) judgeAudit(r *Report, cr *ControlResult) {
	if r.Kind == KindCapture {
		cr.set(StatusNotApplicable, "A capture is not an audit trail: audit controls are judged from parapet's own logs.")
		return
	}
	tampered, unverified, empty := 0, 0, 0
	unclean, unobserved := 0, b.unobserved
	for _, s := range r.Sources {
		v := s.Verification
		if v == nil {
			unverified++
			cr.add("%s: not verified", s.Name)
			continue
		}
		switch {
		case !v.Intact && v.ProblemKind != compliance.ProblemSignature && v.ProblemKind != compliance.ProblemUnsigned:
			tampered++
			cr.add("%s: chain broken after %d verified records: %s", s.Name, v.Records, v.Problem)
		case v.Records == 0:
			empty++
			cr.add("%s: holds no record (a log parapet writes starts with an opened event): emptied, or not a log parapet wrote", s.Name)
		default:
			cr.add("%s: %d records chained without a gap, seq %d..%d, last hash %s", s.Name, v.Records, v.FirstSeq, v.LastSeq, v.LastHash)
		}
		if v.ContinuesFrom != "" {
			cr.add("%s: the chain continues %s, which was not given; records before it are not covered", s.Name, v.ContinuesFrom)
		}
		if v.Truncated != "" {
			cr.add("%s: torn last line (a crash mid-write, not tampering): %s", s.Name, v.Truncated)
		}
		if v.Recovered > 0 {
			cr.add("%s: %d torn %s sealed after a crash", s.Name, v.Recovered, plural(v.Recovered, "line", "lines"))
		}
		if v.UncleanStops > 0 {
			unclean += v.UncleanStops
			cr.add("%s: %d %s ended without closing the log", s.Name, v.UncleanStops, plural(v.UncleanStops, "run", "runs"))
		}
		cr.add("%s: %d %s, %d %s, %d refused %s", s.Name, v.Starts, plural(v.Starts, "start", "starts"),
			v.Reloads, plural(v.Reloads, "reload", "reloads"), v.ReloadsRefused, plural(v.ReloadsRefused, "reload", "reloads"))
	}
	if unobserved > 0 {
		cr.add("%d %s up when parapet stopped uncleanly: recorded as unobserved from the live-call journal", unobserved, plural(unobserved, "call was", "calls were"))
	}
	switch {
	case len(r.Sources) == 0:
		cr.set(StatusNotApplicable, "No log was given.")
	case tampered > 0:
		cr.set(StatusNeedsAttention, "The log was altered: %d of %d %s failed verification; its records cannot be relied on.",
			tampered, len(r.Sources), plural(len(r.Sources), "chain", "chains"))
	case empty > 0:
		cr.set(StatusNeedsAttention, "%d %s no record at all: the activity of the period is not shown.", empty, plural(empty, "log holds", "logs hold"))
	case unverified > 0:
		cr.set(StatusNeedsAttention, "%d %s could not be verified.", unverified, plural(unverified, "chain", "chains"))
	case unclean > 0:
		cr.set(StatusNeedsAttention, "Every record is chained, but parapet stopped uncleanly %d %s: the ends of calls live then were not observed.",
			unclean, plural(unclean, "time", "times"))
	default:
		cr.set(StatusSatisfied, "Every call and connection event was recorded in a chain that verifies without a gap.")
	}
}

func (b *Builder) judgeIntegrity(r *Report, cr *ControlResult) {
	if r.Kind == KindCapture {
		cr.set(StatusNotApplicable, "A capture is not an audit trail: the integrity of records is judged from parapet's own logs.")
		return
	}
	var tampered, notChecked, failed, none int
	for _, s := range r.Sources {
		v := s.Verification
		if v == nil {
			notChecked++
			continue
		}
		if !v.Intact {
			tampered++
			cr.add("%s: %s", s.Name, v.Problem)
		}
		switch v.Signatures {
		case SignaturesVerified:
			cr.add("%s: %d %s signed with %s verified, covering seq %d..%d; %d %s in the unsigned tail",
				s.Name, v.Checkpoints, plural(v.Checkpoints, "checkpoint", "checkpoints"), v.KeyID, v.FirstSeq, v.SignedSeq,
				v.UnsignedRecords, plural(v.UnsignedRecords, "record", "records"))
		case SignaturesNotChecked:
			notChecked++
			cr.add("%s: hash chain only; signatures not checked (no public key given for this log)", s.Name)
		case SignaturesNone:
			none++
			cr.add("%s: no signed checkpoint in the log", s.Name)
		case SignaturesFailed:
			failed++
		}
	}
	switch {
	case len(r.Sources) == 0:
		cr.set(StatusNotApplicable, "No log was given.")
	case tampered > 0:
		cr.set(StatusNeedsAttention, "Records were altered, removed or left unsigned: %d of %d %s failed verification.",
			tampered, len(r.Sources), plural(len(r.Sources), "chain", "chains"))
	case failed+none > 0:
		cr.set(StatusNeedsAttention, "The signatures do not cover the log.")
	case notChecked > 0:
		cr.set(StatusNeedsAttention, "The hash chain is intact, but without parapet's public key (-key signing.pub) a rewrite by someone able to write the log cannot be ruled out.")
	default:
		cr.set(StatusSatisfied, "The chain is intact and signed checkpoints made with parapet's key cover it.")
	}
}

func (b *Builder) judgeAuthentication(_ *Report, cr *ControlResult) {
	c := policy.ControlAuthentication
	sat, viol, notReq := b.findingsOf(c, policy.StatusSatisfied), b.findingsOf(c, policy.StatusViolated), b.findingsOf(c, policy.StatusNotRequired)
	if sat > 0 {
		cr.add("%d %s authenticated by a verified certificate", sat, plural(sat, "leg", "legs"))
	}
	if notReq > 0 {
		cr.add("%d %s without a verified certificate where the zone did not ask for one", notReq, plural(notReq, "leg", "legs"))
	}
	if b.certRefusals > 0 {
		cr.add("%d TLS %s refused for a missing or untrusted client certificate", b.certRefusals, plural(b.certRefusals, "handshake", "handshakes"))
	}
	if n := b.ruleCount(policy.VerdictRejected, policy.RulePeerUnauthenticated); n > 0 {
		cr.add("%d %s refused: the peer was not authenticated", n, plural(n, "call", "calls"))
	}
	switch {
	case viol > 0:
		cr.set(StatusNeedsAttention, "%d %s ran without the authentication the zone requires (a verified certificate, or TLS at all).", viol, plural(viol, "leg", "legs"))
	case sat+notReq > 0 || b.certRefusals > 0:
		cr.set(StatusSatisfied, "Every leg was authenticated as its zone requires.")
	default:
		cr.set(StatusNotApplicable, "No leg carried signaling in this period.")
	}
}

func (b *Builder) judgeTransmission(r *Report, cr *ControlResult, c policy.Control) {
	sat, viol := b.findingsOf(c, policy.StatusSatisfied), b.findingsOf(c, policy.StatusViolated)
	l := r.Legs
	if l.External > 0 {
		cr.add("external legs with SIP over TLS 1.2 or later: %d of %d (%s)", l.TLS12, l.External, pct(l.TLS12, l.External))
	}
	if l.ExternalWithMedia > 0 {
		cr.add("external legs that carried media with SRTP: %d of %d (%s)", l.SRTP, l.ExternalWithMedia, pct(l.SRTP, l.ExternalWithMedia))
	}
	if b.floorRefusals > 0 {
		cr.add("%d TLS %s below 1.2 refused (RFC 8996)", b.floorRefusals, plural(b.floorRefusals, "handshake", "handshakes"))
	}
	for _, rule := range []string{policy.RuleTLSRequired, policy.RuleSRTPRequired, policy.RuleAnswerSRTPRequired,
		policy.RuleDowngrade, policy.RuleSDESClear, policy.RuleNoAcceptableCrypto} {
		if n := b.ruleCount(policy.VerdictRejected, rule); n > 0 {
			cr.add("%d refused by rule %s", n, rule)
		}
		if n := b.ruleCount(policy.VerdictWouldReject, rule); n > 0 {
			cr.add("%d let through in observe mode that rule %s would refuse", n, rule)
		}
	}
	if n := b.ruleCount(policy.VerdictUpgraded, policy.RuleUpgrade); n > 0 {
		cr.add("%d %s upgraded (plain RTP in, SRTP out), %d of them answered", n, plural(n, "call", "calls"), b.upgradedAnswered)
	}
	clearFlows, clearHandshakes := 0, 0
	if cp := r.Capture; cp != nil {
		for _, f := range cp.Flows {
			if f.Class == FlowRTP {
				clearFlows++
			}
		}
		for _, h := range cp.Handshakes {
			if h.Version != "" && !tlsAtLeast12(h.Version) {
				clearHandshakes++
			}
		}
		if clearFlows > 0 {
			cr.add("%d media %s in clear RTP in the capture", clearFlows, plural(clearFlows, "flow", "flows"))
		}
		if clearHandshakes > 0 {
			cr.add("%d TLS %s below 1.2 completed in the capture", clearHandshakes, plural(clearHandshakes, "handshake", "handshakes"))
		}
	}
	switch {
	case viol > 0:
		cr.set(StatusNeedsAttention, "%d %s carried SIP or media without the protection policy requires.", viol, plural(viol, "leg", "legs"))
	case clearFlows+clearHandshakes > 0:
		cr.set(StatusNeedsAttention, "The capture shows media in clear or TLS below 1.2.")
	case sat > 0 || l.External > 0 || b.floorRefusals > 0:
		cr.set(StatusSatisfied, "Every leg policy calls external ran SIP over TLS 1.2+ and media over SRTP.")
	default:
		cr.set(StatusNotApplicable, "No leg carried signaling in this period.")
	}
}

func (b *Builder) judgeTransitIntegrity(_ *Report, cr *ControlResult) {
	c := policy.ControlTransitIntegrity
	sat, viol := b.findingsOf(c, policy.StatusSatisfied), b.findingsOf(c, policy.StatusViolated)
	if sat > 0 {
		cr.add("%d %s with every media packet authenticated by SRTP", sat, plural(sat, "leg", "legs"))
	}
	a := b.attacks
	if a.AuthFailures+a.Replays > 0 {
		cr.add("dropped and counted: %d media packets failing authentication and %d replayed, in %d %s",
			a.AuthFailures, a.Replays, a.Calls, plural(a.Calls, "call", "calls"))
	}
	switch {
	case viol > 0:
		cr.set(StatusNeedsAttention, "%d %s carried media without integrity protection where policy requires it.", viol, plural(viol, "leg", "legs"))
	case sat > 0 || b.findingsOf(c, policy.StatusNotRequired) > 0:
		cr.set(StatusSatisfied, "Media was integrity-protected wherever policy requires it.")
	default:
		cr.set(StatusNotApplicable, "No media flowed in this period.")
	}
}

func (b *Builder) judgeDeidentification(r *Report, cr *ControlResult) {
	if r.Kind == KindCapture {
		cr.set(StatusNotApplicable, "Judged from parapet's own records; numbers and Call-IDs in this report are pseudonymised.")
		return
	}
	if b.calls > 0 {
		cr.add("%d of %d call records hold the parties' numbers in clear", b.inClear, b.calls)
	}
	switch {
	case b.inClear > 0:
		cr.set(StatusNeedsAttention, "%d call %s hold numbers in clear: pseudonymisation was off.", b.inClear, plural(b.inClear, "record", "records"))
	case b.calls > 0:
		cr.set(StatusSatisfied, "Every call record names the parties by keyed pseudonym only.")
	default:
		cr.set(StatusNotApplicable, "No call was recorded in this period.")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
