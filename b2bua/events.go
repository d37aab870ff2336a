package b2bua

import (
	"net/netip"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

func (s *Server) onHandshake(z *zone, r handshakeResult) {
	if r.Err == nil {
		s.stats.tlsHandshakes.Add(1)
		return
	}
	if ip, ok := s.outsider(z, r.Remote); ok {
		// Counted in the zone's tally, not one record (nor log line) each.
		s.stats.tlsRefused.Add(1)
		s.tallyOutsider(z, ip, "", fateTLSRefused)
		s.log.Debug("tls handshake refused", "zone", z.name, "remote", r.Remote, "error", r.Err)
		return
	}
	// Held from the count on: a refusal counted is in the records too.
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.stats.tlsRefused.Add(1)
	d := policy.Evaluate(policy.Input{Stage: policy.StageHandshake, Zone: s.rules.Load().zone(z.name),
		Handshake: policy.HandshakeFacts{ClientMaxVersion: r.ClientMax, Error: r.Err.Error()}})
	sig := policy.SignalingFacts{Transport: policy.TransportTLS}
	s.log.Info("tls handshake refused", "zone", z.name, "remote", r.Remote,
		"client_max", r.ClientMax.String(), "sni", r.SNI, "error", r.Err)
	s.connEventLocked(z, compliance.EventTLSRefused, sig, r.Remote, func(e *compliance.ConnEvent) {
		e.Local = r.Local
		e.ClientMaxVersion = r.ClientMax.String()
		e.SNI = r.SNI
		e.Error = r.Err.Error()
		e.Decision = &d
		if c := certFromError(r.Err); c != nil {
			ci := certInfo(certFacts(c))
			e.PeerCert = ci
		}
	})
}

// outsider reports whether remote, an address:port, is outside zone z's
// peers by the rules in force, and its address.
func (s *Server) outsider(z *zone, remote string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}, false
	}
	ip := ap.Addr().Unmap()
	return ip, !s.rules.Load().zone(z.name).AdmitsSource(ip)
}

// connEvent writes a connection-event record, folding floods of alike
// events into one record per interval (see eventFolder).
func (s *Server) connEvent(z *zone, event compliance.ConnEventKind, sig policy.SignalingFacts, remote string, fill func(*compliance.ConnEvent)) {
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.connEventLocked(z, event, sig, remote, fill)
}

// connEventLocked is connEvent with evMu held (shared).
func (s *Server) connEventLocked(z *zone, event compliance.ConnEventKind, sig policy.SignalingFacts, remote string, fill func(*compliance.ConnEvent)) {
	e := &compliance.ConnEvent{Event: event, Zone: z.name, Transport: sig.Transport.String(),
		Remote: remote, PolicyHash: s.rules.Load().hash}
	fill(e)
	e.Error = recordText(e.Error, nil)
	// After the final drain nothing would write a folded count: no folding.
	if !s.evDone {
		if e = s.events.fold(e, time.Now()); e == nil {
			return
		}
	}
	s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
}

// drainEvents writes the folded-event counts of kinds that went quiet
// (all of them when all is set, at shutdown), and the outsider tallies.
// The caller holds evMu exclusively, so that no refusal of an outsider is
// between its response and its count: a refusal holds evMu (shared) from
// before its response leaves to after it is counted, so that a tally
// never lacks a refusal its sender has already seen.
func (s *Server) drainEvents(all bool) {
	for _, e := range s.events.drain(time.Now(), all) {
		s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
	}
	s.flushOutsiders()
	s.lines.drain(time.Now(), all)
}

// flushOutsiders writes each zone's outsider tally of the period that
// ends now: with evMu held exclusively, or after the final drain.
func (s *Server) flushOutsiders() {
	hash := s.rules.Load().hash
	for _, e := range s.outsiders.flush() {
		e.PolicyHash = hash
		s.rec.append(&compliance.Record{Type: compliance.TypeConnection, Conn: e})
	}
}

// tallyOutsider counts a request (method set) or connection from src,
// outside zone z's peers, in the zone's tally: no record of its own.
func (s *Server) tallyOutsider(z *zone, src netip.Addr, method string, fate outsiderFate) {
	s.evMu.RLock()
	defer s.evMu.RUnlock()
	s.tallyOutsiderLocked(z, src, method, fate)
}

// tallyOutsiderLocked is tallyOutsider with evMu held (shared).
func (s *Server) tallyOutsiderLocked(z *zone, src netip.Addr, method string, fate outsiderFate) {
	s.stats.outsiders[fate].Add(1)
	s.outsiders.add(z.name, src, method, fate, time.Now())
	if s.evDone {
		// After the final drain nothing would write the tally: at once.
		s.flushOutsiders()
	}
}
