package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// Options configures a Builder.
type Options struct {
	// Kind is KindLog or KindCapture.
	Kind string
	// Since and Until bound the period (zero: open). A record counts when
	// Since <= time < Until.
	Since, Until time.Time
	// Now is the report's generation time (days to certificate expiry count
	// from it); zero means time.Now().
	Now time.Time
	// Generator names the program ("parapet v1.2.3").
	Generator string
	// MaxExamples is the number of examples kept per rule or event (default
	// 3); MaxPeers the number of inventory peers and MaxCerts of
	// certificates reported (default 1000 each). Peers and certificates
	// tracked are capped at ten times that, so that memory stays flat
	// whatever the log holds.
	MaxExamples int
	MaxPeers    int
	MaxCerts    int
}

func (o *Options) defaults() {
	if o.Kind == "" {
		o.Kind = KindLog
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.MaxExamples <= 0 {
		o.MaxExamples = 3
	}
	if o.MaxPeers <= 0 {
		o.MaxPeers = 1000
	}
	if o.MaxCerts <= 0 {
		o.MaxCerts = 1000
	}
}

// Builder folds records into a Report. It keeps counters, a few examples per
// rule and bounded tables of peers and certificates, never the records: a
// log of millions of records is built in flat memory. Not safe for
// concurrent use.
type Builder struct {
	opts    Options
	sources []*Source
	period  Period

	dispositions map[string]int
	zoneCalls    map[string]map[string]int
	zoneLegs     map[string]*zoneAcc
	calls        int

	transports, tlsVersions, ciphers, profiles, suites, kex, codecs map[string]int

	certs        map[string]*Cert
	certsDropped int

	verdicts   map[policy.Verdict]map[string]*RuleCount
	downgrades int
	events     map[string]*EventCount

	attacks MediaAttacks

	findings map[policy.Control]map[policy.FindingStatus]int
	// violations counts the details of violated findings per control
	// (at most maxViolationDetails distinct ones each): what exactly went
	// wrong, for the evidence.
	violations map[policy.Control]map[string]int
	// facts behind the controls, beyond the findings
	inClear int // call records with numbers in clear
	// upgradedAnswered counts upgraded calls that were answered: their
	// media ran as planned (the others never carried any).
	upgradedAnswered int
	certRefusals     int // handshakes refused for a missing or bad certificate
	floorRefusals    int // handshakes refused below TLS 1.2
	uncleanStops     int
	unobserved       int
	perSourceLogEv   []logCounts

	peers        map[string]*peerAcc
	peersDropped int

	capture *Capture
}

// zoneAcc counts one zone's legs; whether the zone is external is decided
// at the end, from the findings its legs got.
type zoneAcc struct {
	legs, tls12, withMedia, srtp, both int
	// requires is set when a finding or decision shows the zone's policy
	// requiring protection; notRequired when a finding says it did not.
	requires, notRequired bool
	// securedSignaling and securedMedia, per leg, are summed for the
	// external share.
}

type logCounts struct {
	starts, reloads, refused, unclean, unobserved int
	hashes                                        []string
}

// peerAcc is an inventory peer being built.
type peerAcc struct {
	Peer
	zones  map[string]bool
	issues map[string]*Issue
}

// NewBuilder returns a Builder for a report with opts.
func NewBuilder(opts Options) *Builder {
	opts.defaults()
	return &Builder{
		opts:         opts,
		dispositions: map[string]int{},
		zoneCalls:    map[string]map[string]int{},
		zoneLegs:     map[string]*zoneAcc{},
		transports:   map[string]int{}, tlsVersions: map[string]int{}, ciphers: map[string]int{},
		profiles: map[string]int{}, suites: map[string]int{}, kex: map[string]int{}, codecs: map[string]int{},
		certs:      map[string]*Cert{},
		verdicts:   map[policy.Verdict]map[string]*RuleCount{},
		events:     map[string]*EventCount{},
		findings:   map[policy.Control]map[policy.FindingStatus]int{},
		violations: map[policy.Control]map[string]int{},
		peers:      map[string]*peerAcc{},
	}
}

// AddSource registers a source (a chain of log files, or a capture) and
// returns its index for Add.
func (b *Builder) AddSource(s Source) int {
	b.sources = append(b.sources, &s)
	b.perSourceLogEv = append(b.perSourceLogEv, logCounts{})
	return len(b.sources) - 1
}

// SetVerification records what verifying source src found.
func (b *Builder) SetVerification(src int, v *Verification) {
	b.sources[src].Verification = v
}

// SetSourceDetail records a capture's SHA-256 and the notes its reading
// left (what could not be read, say).
func (b *Builder) SetSourceDetail(src int, sha256 string, notes []string) {
	b.sources[src].SHA256 = sha256
	b.sources[src].Notes = append(b.sources[src].Notes, notes...)
}

// AddNote adds a note to source src.
func (b *Builder) AddNote(src int, note string) {
	b.sources[src].Notes = append(b.sources[src].Notes, note)
}

// SetCapture sets the capture section (parapet audit).
func (b *Builder) SetCapture(c *Capture) { b.capture = c }

// InPeriod reports whether t falls in the report's period.
func (b *Builder) InPeriod(t time.Time) bool {
	if !b.opts.Since.IsZero() && t.Before(b.opts.Since) {
		return false
	}
	if !b.opts.Until.IsZero() && !t.Before(b.opts.Until) {
		return false
	}
	return true
}

// Add folds one record of source src into the report. Records outside the
// period are ignored.
func (b *Builder) Add(src int, rec *compliance.Record) {
	if !b.InPeriod(rec.Time) {
		return
	}
	s := b.sources[src]
	s.Records++
	t := rec.Time
	if b.period.First == nil || t.Before(*b.period.First) {
		b.period.First = &t
	}
	if b.period.Last == nil || t.After(*b.period.Last) {
		t2 := t
		b.period.Last = &t2
	}
	switch {
	case rec.Call != nil:
		s.Calls++
		if rec.Call.Disposition == compliance.DispositionUnobserved {
			b.perSourceLogEv[src].unobserved++
		}
		b.addCall(s.Name, rec)
	case rec.Conn != nil:
		b.addConn(s.Name, rec)
	case rec.Log != nil:
		b.addLog(src, rec.Log)
	}
}

func (b *Builder) addLog(src int, ev *compliance.LogEvent) {
	lc := &b.perSourceLogEv[src]
	switch ev.Event {
	case compliance.LogOpened:
		lc.starts++
	case compliance.LogReloaded:
		lc.reloads++
	case compliance.LogReloadRefused:
		lc.refused++
	case compliance.LogUncleanStop:
		lc.unclean++
		b.uncleanStops++
	default: // recovered, rotated, checkpoint, closed: the verification covers them
	}
	if ev.PolicyHash != "" && !slices.Contains(lc.hashes, ev.PolicyHash) && len(lc.hashes) < 100 {
		lc.hashes = append(lc.hashes, ev.PolicyHash)
	}
}

func (b *Builder) addCall(source string, rec *compliance.Record) {
	c := rec.Call
	b.calls++
	b.dispositions[string(c.Disposition)]++
	if c.Disposition == compliance.DispositionUnobserved {
		b.unobserved++
	}
	if !c.Pseudonymized && (c.Caller != "" || c.Callee != "") {
		b.inClear++
	}
	ex := b.callExample(source, rec)

	seenZone := map[string]bool{}
	for i := range c.Legs {
		leg := &c.Legs[i]
		if leg.Zone != "" && !seenZone[leg.Zone] {
			seenZone[leg.Zone] = true
			zc := b.zoneCalls[leg.Zone]
			if zc == nil {
				zc = map[string]int{}
				b.zoneCalls[leg.Zone] = zc
			}
			zc[string(c.Disposition)]++
		}
		b.addLeg(rec, leg)
	}

	// Decisions: every one that was not a plain allow.
	refused := map[string]bool{} // rules that rejected this call, by zone
	for _, d := range c.Decisions {
		if d.Verdict == policy.VerdictAllowed {
			continue
		}
		if d.Rule == policy.RuleDowngrade {
			b.downgrades++
		}
		dex := ex
		dex.Zone = d.Zone
		dex.Reason = d.Reason
		b.addDecision(d, dex)
		if d.Verdict == policy.VerdictRejected {
			refused[d.Zone+"\x00"+d.Rule] = true
		}
		if d.Verdict == policy.VerdictUpgraded && c.Answer != nil {
			b.upgradedAnswered++
		}
	}

	// Media attacks.
	var af, rp, ws, up uint64
	for _, leg := range c.Legs {
		if m := leg.Media; m != nil {
			af += m.AuthFailures
			rp += m.Replays
			ws += m.WrongSource
			up += m.Unprotected
		}
	}
	if af+rp+ws+up > 0 {
		b.attacks.AuthFailures += af
		b.attacks.Replays += rp
		b.attacks.WrongSource += ws
		b.attacks.Unprotected += up
		b.attacks.Calls++
		if len(b.attacks.Examples) < b.opts.MaxExamples {
			aex := ex
			aex.Reason = attackReason(af, rp, ws, up)
			b.attacks.Examples = append(b.attacks.Examples, aex)
		}
	}

	b.inventoryCall(rec, refused)
}

func attackReason(af, rp, ws, up uint64) string {
	var parts []string
	add := func(n uint64, what string) {
		if n > 0 {
			parts = append(parts, strconv.FormatUint(n, 10)+" "+what)
		}
	}
	add(af, "failing authentication")
	add(rp, "replayed")
	add(ws, "from the wrong source")
	add(up, "unprotected on an SRTP leg")
	return "packets dropped: " + strings.Join(parts, ", ")
}

// callExample is the example a call gives: the A leg's zone, remote and
// hashed Call-ID, and the numbers as the record holds them.
func (b *Builder) callExample(source string, rec *compliance.Record) Example {
	c := rec.Call
	ex := Example{Source: source, Seq: rec.Seq, Time: rec.Time, Caller: c.Caller, Callee: c.Callee,
		Reason: c.EndReason}
	for _, l := range c.Legs {
		if l.Role == compliance.RoleA {
			ex.Zone, ex.Remote, ex.CallID = l.Zone, l.Remote, l.CallID
			break
		}
	}
	return ex
}

func (b *Builder) addDecision(d policy.Decision, ex Example) {
	m := b.verdicts[d.Verdict]
	if m == nil {
		m = map[string]*RuleCount{}
		b.verdicts[d.Verdict] = m
	}
	rc := m[d.Rule]
	if rc == nil {
		rc = &RuleCount{Rule: d.Rule, Status: d.Status, Examples: []Example{}}
		for _, c := range d.Controls {
			rc.Controls = append(rc.Controls, string(c))
		}
		m[d.Rule] = rc
	}
	rc.Count++
	if len(rc.Examples) < b.opts.MaxExamples {
		rc.Examples = append(rc.Examples, ex)
	}
}

func (b *Builder) addLeg(rec *compliance.Record, leg *compliance.Leg) {
	zone := leg.Zone
	if zone == "" {
		zone = "(none)"
	}
	za := b.zoneLegs[zone]
	if za == nil {
		za = &zoneAcc{}
		b.zoneLegs[zone] = za
	}
	var tx, transit *policy.Finding
	for i := range leg.Controls {
		f := &leg.Controls[i]
		fs := b.findings[f.Control]
		if fs == nil {
			fs = map[policy.FindingStatus]int{}
			b.findings[f.Control] = fs
		}
		fs[f.Status]++
		if f.Status == policy.StatusViolated {
			b.noteViolation(f)
		}
		switch f.Control {
		case policy.ControlTransmission:
			tx = f
		case policy.ControlTransitIntegrity:
			transit = f
		default: // the other controls are counted above, not picked out
		}
	}
	connected := tx == nil || tx.Status != policy.StatusNotApplicable
	if connected && leg.Transport != "" {
		b.transports[leg.Transport]++
	}
	tls12 := leg.TLS != nil && tlsAtLeast12(leg.TLS.Version)
	if leg.TLS != nil {
		b.tlsVersions[leg.TLS.Version]++
		if leg.TLS.CipherSuite != "" {
			b.ciphers[leg.TLS.CipherSuite]++
		}
		if pc := leg.TLS.PeerCert; pc != nil {
			b.addCert(pc, zone, rec.Time)
		}
	}
	if m := leg.Media; m != nil {
		if m.Profile != "" {
			b.profiles[m.Profile]++
		}
		if m.SRTPSuite != "" {
			b.suites[m.SRTPSuite]++
		}
		if m.KeyExchange != "" {
			b.kex[m.KeyExchange]++
		}
		if m.Codec != "" {
			b.codecs[m.Codec]++
		}
	}
	if !connected {
		return
	}
	za.legs++
	if tls12 {
		za.tls12++
	}
	if tx != nil {
		switch tx.Status {
		case policy.StatusNotRequired:
			za.notRequired = true
		case policy.StatusViolated:
			za.requires = true
		default: // satisfied or not applicable: the zone's default holds
		}
	}
	// A leg carried media when LegFindings judged its media: only then
	// is there an (e)(2)(i) finding.
	srtp := transit != nil && transit.Status == policy.StatusSatisfied
	if transit != nil {
		za.withMedia++
		if srtp {
			za.srtp++
		}
	}
	// Fully protected: SIP over TLS 1.2+ and, when media flowed, SRTP. A
	// leg refused before any media is judged on its signaling alone.
	if tls12 && (transit == nil || srtp) {
		za.both++
	}
}

// maxViolationDetails bounds the distinct details kept per control.
const maxViolationDetails = 50

func (b *Builder) noteViolation(f *policy.Finding) {
	m := b.violations[f.Control]
	if m == nil {
		m = map[string]int{}
		b.violations[f.Control] = m
	}
	if _, ok := m[f.Detail]; ok || len(m) < maxViolationDetails {
		m[f.Detail]++
	}
}

func (b *Builder) addCert(pc *compliance.CertInfo, zone string, t time.Time) {
	c := b.certs[pc.SHA256]
	if c == nil {
		if len(b.certs) >= 10*b.opts.MaxCerts {
			b.certsDropped++
			return
		}
		c = &Cert{Subject: pc.Subject, Issuer: pc.Issuer, SHA256: pc.SHA256, NotAfter: pc.NotAfter,
			Verified: pc.Verified, VerifyError: pc.VerifyError, Zones: []string{}}
		b.certs[pc.SHA256] = c
	}
	c.Seen++
	if t.After(c.LastSeen) {
		c.LastSeen = t
		c.Verified, c.VerifyError = pc.Verified, pc.VerifyError
	}
	if zone != "" && !slices.Contains(c.Zones, zone) && len(c.Zones) < 20 {
		c.Zones = append(c.Zones, zone)
	}
}

func (b *Builder) addConn(source string, rec *compliance.Record) {
	ev := rec.Conn
	ec := b.events[string(ev.Event)]
	if ec == nil {
		ec = &EventCount{Event: string(ev.Event), Examples: []Example{}}
		b.events[string(ev.Event)] = ec
	}
	ec.Count++
	ec.Folded += ev.Suppressed
	if t := ev.Tally; t != nil && t.Total() > 0 {
		// One summary stands for every request and connection it counts.
		ec.Folded += t.Total() - 1
	}
	ex := Example{Source: source, Seq: rec.Seq, Time: rec.Time, Zone: ev.Zone, Remote: ev.Remote, Reason: connReason(ev)}
	if len(ec.Examples) < b.opts.MaxExamples {
		ec.Examples = append(ec.Examples, ex)
	}
	if ev.PeerCert != nil {
		b.addCert(ev.PeerCert, ev.Zone, rec.Time)
	}
	if ev.Decision != nil && ev.Decision.Verdict != policy.VerdictAllowed {
		b.addDecision(*ev.Decision, ex)
	}
	if ev.Event == compliance.EventTLSRefused {
		switch {
		case ev.ClientMaxVersion != "" && !tlsAtLeast12(ev.ClientMaxVersion):
			b.floorRefusals++
		case certProblem(ev) != "":
			b.certRefusals++
		}
	}
	b.inventoryConn(rec)
}

func connReason(ev *compliance.ConnEvent) string {
	var parts []string
	if ev.Method != "" {
		parts = append(parts, ev.Method)
	}
	if ev.SIPStatus != 0 {
		parts = append(parts, "answered "+strconv.Itoa(ev.SIPStatus))
	}
	if ev.ClientMaxVersion != "" {
		parts = append(parts, "client offered at most "+ev.ClientMaxVersion)
	}
	if ev.SNI != "" {
		parts = append(parts, "SNI "+ev.SNI)
	}
	// A refusal below the floor is said by the version; Go's own words for
	// it ("client offered only unsupported versions: [302 301]") add
	// nothing a reader can use.
	if ev.Error != "" && (ev.ClientMaxVersion == "" || tlsAtLeast12(ev.ClientMaxVersion)) {
		parts = append(parts, ev.Error)
	}
	if ev.Suppressed > 0 {
		parts = append(parts, "and "+strconv.FormatUint(ev.Suppressed, 10)+" more folded into this record")
	}
	if t := ev.Tally; t != nil {
		parts = append(parts, tallyReason(t))
	}
	return strings.Join(parts, "; ")
}

// tallyReason says what an outsiders summary counts, busiest source first.
func tallyReason(t *compliance.OutsiderTally) string {
	s := fmt.Sprintf("%d requests and connections from outside the peers: %d refused (403), %d dropped, %d from scanners, %d over budget, %d connections closed, %d TLS handshakes failed",
		t.Total(), t.Refused, t.Dropped, t.Scanners, t.OverBudget, t.Connections, t.TLSRefused)
	if len(t.Prefixes) > 0 {
		s += fmt.Sprintf("; busiest prefix %s (%d)", t.Prefixes[0].Key, t.Prefixes[0].Count)
	}
	return s
}

// certProblem says what was wrong with a refused handshake's client
// certificate: WeakNoCert, WeakBadCert or "".
func certProblem(ev *compliance.ConnEvent) string {
	if ev.PeerCert != nil && !ev.PeerCert.Verified {
		return WeakBadCert
	}
	e := strings.ToLower(ev.Error)
	switch {
	case strings.Contains(e, "didn't provide a certificate"), strings.Contains(e, "no certificate"),
		strings.Contains(e, "certificate required"):
		return WeakNoCert
	case strings.Contains(e, "certificate") && (strings.Contains(e, "verify") || strings.Contains(e, "unknown authority") ||
		strings.Contains(e, "expired") || strings.Contains(e, "bad certificate")):
		return WeakBadCert
	}
	return ""
}

// tlsVersion reads a TLS version as records and captures write it
// ("TLS1.2", "TLS 1.1", "1.3"); 0 when unknown.
func tlsVersion(s string) policy.TLSVersion {
	s = strings.ToLower(strings.ReplaceAll(s, " ", ""))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "tls"), "v")
	if s == "ssl3.0" || s == "ssl3" {
		return policy.VersionSSL30
	}
	v, err := policy.ParseTLSVersion(s)
	if err != nil {
		return 0
	}
	return v
}

func tlsAtLeast12(s string) bool { return tlsVersion(s) >= policy.MinTLSFloor }

// hostOf strips the port of an address ("192.0.2.7:5060" → "192.0.2.7").
func hostOf(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		return ap.Addr().Unmap().String()
	}
	if a, err := netip.ParseAddr(addr); err == nil {
		return a.Unmap().String()
	}
	return addr
}

// counts turns a tally into Counts, most frequent first, then by name.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// Report returns the report built so far. The Builder stays usable.
func (b *Builder) Report() *Report {
	r := &Report{
		ReportVersion: Version,
		Kind:          b.opts.Kind,
		Generated:     b.opts.Now.UTC(),
		Generator:     b.opts.Generator,
		Period:        b.period,
		Sources:       make([]Source, 0, len(b.sources)),
		Certs:         []Cert{},
		Connections:   []EventCount{},
		Capture:       b.capture,
	}
	if !b.opts.Since.IsZero() {
		t := b.opts.Since.UTC()
		r.Period.Since = &t
	}
	if !b.opts.Until.IsZero() {
		t := b.opts.Until.UTC()
		r.Period.Until = &t
	}
	for i, s := range b.sources {
		cp := *s
		cp.Files = slices.Clone(s.Files)
		if cp.Files == nil {
			cp.Files = []string{}
		}
		if v := s.Verification; v != nil {
			vc := *v
			lc := b.perSourceLogEv[i]
			vc.Starts, vc.Reloads, vc.ReloadsRefused, vc.UncleanStops = lc.starts, lc.reloads, lc.refused, lc.unclean
			vc.Unobserved = lc.unobserved
			vc.PolicyHashes = slices.Clone(lc.hashes)
			if vc.PolicyHashes == nil {
				vc.PolicyHashes = []string{}
			}
			cp.Verification = &vc
		}
		r.Sources = append(r.Sources, cp)
	}
	b.fillCalls(r)
	b.fillLegs(r)
	r.Negotiated = Negotiated{
		Transports: counts(b.transports), TLSVersions: counts(b.tlsVersions), CipherSuites: counts(b.ciphers),
		Profiles: counts(b.profiles), SRTPSuites: counts(b.suites), KeyExchanges: counts(b.kex), Codecs: counts(b.codecs),
	}
	b.fillCerts(r)
	r.Decisions = Decisions{
		Rejected:    ruleCounts(b.verdicts[policy.VerdictRejected]),
		Upgraded:    ruleCounts(b.verdicts[policy.VerdictUpgraded]),
		WouldReject: ruleCounts(b.verdicts[policy.VerdictWouldReject]),
		Downgrades:  b.downgrades,
	}
	for _, ec := range b.events {
		cp := *ec
		cp.Examples = slices.Clone(ec.Examples)
		r.Connections = append(r.Connections, cp)
	}
	slices.SortFunc(r.Connections, func(a, b EventCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Event, b.Event)
	})
	r.Attacks = b.attacks
	r.Attacks.Examples = slices.Clone(b.attacks.Examples)
	if r.Attacks.Examples == nil {
		r.Attacks.Examples = []Example{}
	}
	r.Inventory = b.inventory()
	r.Controls = b.judge(r)
	return r
}

func ruleCounts(m map[string]*RuleCount) []RuleCount {
	out := make([]RuleCount, 0, len(m))
	for _, rc := range m {
		cp := *rc
		cp.Examples = slices.Clone(rc.Examples)
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b RuleCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Rule, b.Rule)
	})
	return out
}

func (b *Builder) fillCalls(r *Report) {
	r.Calls = CallStats{Total: b.calls, ByDisposition: counts(b.dispositions), ByZone: []ZoneCalls{}}
	for z, m := range b.zoneCalls {
		n := 0
		for _, v := range m {
			n += v
		}
		r.Calls.ByZone = append(r.Calls.ByZone, ZoneCalls{Zone: z, Calls: n, ByDisposition: counts(m)})
	}
	slices.SortFunc(r.Calls.ByZone, func(a, b ZoneCalls) int { return strings.Compare(a.Zone, b.Zone) })
}

// external reports whether a zone's legs show its policy requiring
// protection: some leg was judged against a requirement (violated) or none
// was judged "not required". docs/reports.md explains the rule.
func (za *zoneAcc) external() bool { return za.requires || !za.notRequired }

func (b *Builder) fillLegs(r *Report) {
	r.Legs.ByZone = []ZoneLegs{}
	for z, za := range b.zoneLegs {
		if za.legs == 0 {
			continue
		}
		ext := za.external()
		r.Legs.ByZone = append(r.Legs.ByZone, ZoneLegs{Zone: z, External: ext, Legs: za.legs, TLS12: za.tls12,
			WithMedia: za.withMedia, SRTP: za.srtp})
		if ext {
			r.Legs.External += za.legs
			r.Legs.TLS12 += za.tls12
			r.Legs.ExternalWithMedia += za.withMedia
			r.Legs.SRTP += za.srtp
			r.Legs.Both += za.both
		}
	}
	slices.SortFunc(r.Legs.ByZone, func(a, b ZoneLegs) int { return strings.Compare(a.Zone, b.Zone) })
}

func (b *Builder) fillCerts(r *Report) {
	for _, c := range b.certs {
		cp := *c
		cp.Zones = slices.Clone(c.Zones)
		cp.DaysToExpiry = daysUntil(b.opts.Now, c.NotAfter)
		r.Certs = append(r.Certs, cp)
	}
	// Soonest expiry first: what needs doing first.
	slices.SortFunc(r.Certs, func(a, b Cert) int {
		if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
			return c
		}
		return strings.Compare(a.SHA256, b.SHA256)
	})
	r.CertsOmitted = b.certsDropped
	if len(r.Certs) > b.opts.MaxCerts {
		r.CertsOmitted += len(r.Certs) - b.opts.MaxCerts
		r.Certs = r.Certs[:b.opts.MaxCerts]
	}
}

// daysUntil counts whole days from now to t, rounding toward the past for
// expired certificates (a certificate that expired an hour ago is at -1).
func daysUntil(now, t time.Time) int {
	d := t.Sub(now)
	days := int(d / (24 * time.Hour))
	if d < 0 && d%(24*time.Hour) != 0 {
		days--
	}
	return days
}
