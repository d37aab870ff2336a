package b2bua

import "time"

// FlushOutsiders ends the outsider tallies' period now (tests cannot wait
// for the 10 s tick).
func (s *Server) FlushOutsiders() {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	s.flushOutsiders()
}

// HeldConns returns the connections zone's TCP and TLS listeners hold,
// all of them and those from outside its peers: what the connection
// budgets count.
func (s *Server) HeldConns(zone string) (open, outsiders int) {
	for _, l := range s.byName[zone].limited {
		l.mu.Lock()
		open += l.open
		outsiders += l.outsiders
		l.mu.Unlock()
	}
	return open, outsiders
}

// ShortenRegisterRetry makes failed registrations retry after d (doubling
// to 4d) until restore.
func ShortenRegisterRetry(d time.Duration) (restore func()) {
	lo, hi := registerRetryMin, registerRetryMax
	registerRetryMin, registerRetryMax = d, 4*d
	return func() { registerRetryMin, registerRetryMax = lo, hi }
}

// FlowFailed reports whether the registration flow token is taken as
// failed (a UDP flow whose pings went unanswered).
func (s *Server) FlowFailed(token string) bool {
	s.binds.mu.Lock()
	defer s.binds.mu.Unlock()
	fl := s.binds.byToken[token]
	return fl != nil && fl.failed
}

// ShortenRingTimeout makes callees and transfer targets ring at most d
// until restore.
func ShortenRingTimeout(d time.Duration) (restore func()) {
	old := ringTimeoutTest.Swap(int64(d))
	return func() { ringTimeoutTest.Store(old) }
}
