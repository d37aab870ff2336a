package b2bua

import (
	"sync"
	"sync/atomic"

	"github.com/parapet-sbc/parapet/compliance"
)

// Stats is a snapshot of the server's counters for metrics.
type Stats struct {
	CallsActive   int
	Calls         map[string]uint64 // by disposition
	TLSHandshakes uint64
	// TLSRefused counts failed TLS handshakes on the listeners, from
	// peers and outsiders alike (the outsiders' are also in Outsiders).
	TLSRefused uint64
	// ConnsRefused counts TCP/TLS connections closed at accept by the
	// connection limits or because the zone drops outsiders (peers' and
	// outsiders' alike; the outsiders' are also in Outsiders).
	ConnsRefused uint64
	// ParseErrors counts datagrams and stream reads that were not SIP
	// (dropped; a stream connection is closed).
	ParseErrors uint64
	// Outsiders counts requests and connections from outside the zones'
	// peers by what they came to: refused, dropped, scanner,
	// over_budget, connection, tls_refused.
	Outsiders map[string]uint64
	// CallLimited counts INVITEs refused with 503 by a call limit (site,
	// zone or route).
	CallLimited uint64
	// EmergencyCalls counts calls to emergency numbers taken (see
	// Config.Emergency).
	EmergencyCalls  uint64
	Records         uint64
	RecordFailures  uint64
	RecordBacklog   int
	MediaPortsInUse int
	MediaPorts      int
	// Media totals over every call since the start, live calls included
	// (each counter only grows): packets accepted from peers, and packets
	// dropped by reason (see media.Counters).
	PacketsRelayed uint64
	AuthFailures   uint64
	Replays        uint64
	WrongSource    uint64
	Malformed      uint64
	Unprotected    uint64
	STUN           uint64
	DTLS           uint64
	// Trunks is the registration state of every route that registers
	// with its carrier, by route name.
	Trunks map[string]TrunkState
	// Targets are the route targets OPTIONS pings settled up or down
	// (routes with several targets and an options_interval).
	Targets []TargetHealth
}

type stats struct {
	tlsHandshakes, tlsRefused atomic.Uint64
	records, recordFailures   atomic.Uint64
	connRefused               atomic.Uint64
	parseErrors               atomic.Uint64
	outsiders                 [fateCount]atomic.Uint64
	callLimited               atomic.Uint64
	emergency                 atomic.Uint64
	mu                        sync.Mutex
	calls                     map[string]uint64
}

func (st *stats) call(disposition compliance.Disposition) {
	st.mu.Lock()
	if st.calls == nil {
		st.calls = map[string]uint64{}
	}
	st.calls[string(disposition)]++
	st.mu.Unlock()
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	m, active := s.reg.media()
	st := Stats{
		CallsActive:     active,
		Calls:           map[string]uint64{},
		TLSHandshakes:   s.stats.tlsHandshakes.Load(),
		TLSRefused:      s.stats.tlsRefused.Load(),
		ConnsRefused:    s.stats.connRefused.Load(),
		ParseErrors:     s.stats.parseErrors.Load(),
		Outsiders:       map[string]uint64{},
		CallLimited:     s.stats.callLimited.Load(),
		EmergencyCalls:  s.stats.emergency.Load(),
		Records:         s.stats.records.Load(),
		RecordFailures:  s.stats.recordFailures.Load(),
		RecordBacklog:   s.rec.backlog(),
		MediaPortsInUse: s.pool.InUse() * 2,
		MediaPorts:      s.pool.Pairs() * 2,
		PacketsRelayed:  m.PacketsIn,
		AuthFailures:    m.AuthFailures,
		Replays:         m.Replays,
		WrongSource:     m.WrongSource,
		Malformed:       m.Malformed,
		Unprotected:     m.Unprotected,
		STUN:            m.STUN,
		DTLS:            m.DTLS,
		Trunks:          s.trunkStates(),
		Targets:         s.env.health.snapshot(),
	}
	for f := range fateCount {
		st.Outsiders[f.String()] = s.stats.outsiders[f].Load()
	}
	s.stats.mu.Lock()
	for k, v := range s.stats.calls {
		st.Calls[k] = v
	}
	s.stats.mu.Unlock()
	return st
}
