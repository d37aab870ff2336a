package b2bua

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/topology"
)

// trunkSet holds the registrations of the routes that register, by route
// name, and the line tokens of their Contacts (kept for the process's
// life, so that a reload that registers a route anew keeps its Contact).
type trunkSet struct {
	// mu guards live, tokens and specs; it is held while trunks are
	// started and stopped (a stop may wait for the registrar).
	mu     sync.Mutex
	live   map[string]*trunk
	tokens map[string]string
	// specs are what each live trunk was started from, to tell a reload
	// that changes it.
	specs map[string]trunkSpec
	// stopped is set at shutdown: no trunk starts after it.
	stopped bool
	// lines maps the line tokens of the live trunks to them, for
	// admission, which must never wait for mu.
	lines atomic.Pointer[map[string]lineOf]
	// stMu guards states: the trunks' last states by route (kept after a
	// trunk stops, for metrics, until its route goes away).
	stMu   sync.Mutex
	states map[string]TrunkState
}

// lineOf is the trunk a line token belongs to.
type lineOf struct{ zone, route string }

// trunkSpec is what a registration depends on: its settings, the
// credentials, the zone it registers from and whether that zone verifies
// certificates. A reload that changes none of them leaves it be.
type trunkSpec struct {
	route, zone string
	reg         topology.Register
	user, pass  string
	verify      bool
}

func newTrunkSet() *trunkSet {
	return &trunkSet{live: map[string]*trunk{}, tokens: map[string]string{}, specs: map[string]trunkSpec{},
		states: map[string]TrunkState{}}
}

// syncTrunks starts the registrations r's routes ask for, stops those of
// routes that no longer register (unregistering them), and registers anew
// a route whose registration, credentials or zone changed.
func (s *Server) syncTrunks(r *rules) {
	ts := s.trunks
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stopped {
		return
	}
	want := map[string]trunkSpec{}
	for _, rr := range r.routes {
		if rr.Register != nil && s.byName[rr.To] != nil {
			want[rr.Name] = trunkSpec{route: rr.Name, zone: rr.To, reg: *rr.Register, user: rr.Username, pass: rr.Password,
				verify: r.zone(rr.To).VerifyPeer}
		}
	}
	var stopping []*trunk
	for name, t := range ts.live {
		if sp, ok := want[name]; ok && sp == ts.specs[name] {
			delete(want, name)
			continue
		}
		stopping = append(stopping, t)
		delete(ts.live, name)
		delete(ts.specs, name)
	}
	haltAll(stopping)
	ts.stMu.Lock()
	for name := range ts.states {
		if _, ok := ts.live[name]; !ok {
			delete(ts.states, name)
		}
	}
	ts.stMu.Unlock()
	for name, sp := range want {
		t := s.newTrunk(sp)
		ts.live[name], ts.specs[name] = t, sp
		t.start()
	}
	ts.indexLines()
}

// indexLines rebuilds lines from live. Caller holds mu.
func (ts *trunkSet) indexLines() {
	m := map[string]lineOf{}
	for name, t := range ts.live {
		m[t.token] = lineOf{zone: t.zone.name, route: name}
	}
	ts.lines.Store(&m)
}

// newTrunk makes route sp's registration (not started).
func (s *Server) newTrunk(sp trunkSpec) *trunk {
	ts := s.trunks
	tok := ts.tokens[sp.route]
	if tok == "" {
		tok = newLineToken()
		ts.tokens[sp.route] = tok
	}
	return &trunk{
		route: sp.route, zone: s.byName[sp.zone], cfg: sp.reg, user: sp.user, pass: sp.pass, token: tok,
		log: s.log, callID: newID() + "@parapet", asked: sp.reg.Expires, notify: s.trunkChanged, verify: sp.verify,
	}
}

// haltAll stops trunks together, each unregistering (so that shutdown
// waits unregisterTimeout at most, however many there are).
func haltAll(ts []*trunk) {
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Go(func() { t.halt(true) })
	}
	wg.Wait()
}

// stopTrunks unregisters every trunk (at shutdown).
func (s *Server) stopTrunks() {
	ts := s.trunks
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.stopped = true
	all := make([]*trunk, 0, len(ts.live))
	for name, t := range ts.live {
		all = append(all, t)
		delete(ts.live, name)
	}
	ts.indexLines()
	haltAll(all)
}

// trunkChanged logs a trunk's change of state and keeps it for metrics.
func (s *Server) trunkChanged(t *trunk, was, now TrunkState, status int, granted time.Duration, err error) {
	ts := s.trunks
	ts.stMu.Lock()
	ts.states[t.route] = now
	ts.stMu.Unlock()
	attrs := []any{"route", t.route, "zone", t.zone.name, "state", string(now), "was", string(was)}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if granted > 0 {
		attrs = append(attrs, "expires", granted.String())
	}
	if now != TrunkRegistering {
		s.trunkEvent(t, now, status, granted, err)
	}
	if err != nil {
		s.log.Warn("trunk registration state changed", append(attrs, "error", err.Error())...)
		return
	}
	s.log.Info("trunk registration state changed", attrs...)
}

// trunkEvent records a trunk's change of state (registered, failed,
// unregistered) as a connection event, never folded: each change is
// recorded, and a trunk changes state at most once per attempt.
func (s *Server) trunkEvent(t *trunk, now TrunkState, status int, granted time.Duration, err error) {
	w := t.lastWhere()
	r := t.cfg.Registrar
	if w.remote == "" {
		w.remote = targetAddr(r.Host, r.Port, r.Transport)
	}
	e := &compliance.ConnEvent{Event: compliance.EventTrunkRegistration, Zone: t.zone.name, Transport: r.Transport.String(),
		Local: w.local, Remote: w.remote, Method: string(sip.REGISTER), SIPStatus: status, Route: t.route,
		State: string(now), Expires: int(granted / time.Second), TLS: tlsInfo(w.tls), PolicyHash: s.rules.Load().hash}
	if err != nil {
		e.Error = recordText(err.Error(), nil)
	}
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
}

// trunkStates returns the registration state of every route that
// registers, by route name.
func (s *Server) trunkStates() map[string]TrunkState {
	out := map[string]TrunkState{}
	ts := s.trunks
	ts.stMu.Lock()
	defer ts.stMu.Unlock()
	for name, st := range ts.states {
		out[name] = st
	}
	return out
}

// admitsLine reports whether uri, the Request-URI of a request arriving in
// zone, carries the line token of one of the zone's trunks: the carrier
// that holds the registration sends calls there, from whatever address.
func (ts *trunkSet) admitsLine(zone string, uri *sip.Uri) (route string, ok bool) {
	if uri == nil || uri.UriParams == nil {
		return "", false
	}
	tok, has := uri.UriParams.Get("line")
	if !has || tok == "" {
		return "", false
	}
	lines := ts.lines.Load()
	if lines == nil {
		return "", false
	}
	l, ok := (*lines)[tok]
	if !ok || l.zone != zone {
		return "", false
	}
	return l.route, true
}

// admitsRawLine is admitsLine on a raw datagram (the UDP gate). Without
// trunks, or without "line=" in its first line, a datagram is not parsed.
func (ts *trunkSet) admitsRawLine(zone string, data []byte) bool {
	if l := ts.lines.Load(); l == nil || len(*l) == 0 {
		return false
	}
	first := data
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		first = data[:i]
	}
	if !bytes.Contains(first, []byte("line=")) {
		return false
	}
	uri, ok := rawRequestURI(data)
	if !ok {
		return false
	}
	_, ok = ts.admitsLine(zone, &uri)
	return ok
}

// rawRequestURI parses the Request-URI of a raw request.
func rawRequestURI(data []byte) (sip.Uri, bool) {
	end := 0
	for end < len(data) && end < 1024 && data[end] != '\r' && data[end] != '\n' {
		end++
	}
	line := string(data[:end])
	var fields [3]string
	n := 0
	for i := 0; i < len(line) && n < 3; {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if j > i {
			fields[n] = line[i:j]
			n++
		}
		i = j
	}
	var u sip.Uri
	if n != 3 || sip.ParseUri(fields[1], &u) != nil {
		return sip.Uri{}, false
	}
	return u, true
}
