package b2bua

// FlushOutsiders ends the outsider tallies' period now (tests cannot wait
// for the 10 s tick).
func (s *Server) FlushOutsiders() { s.flushOutsiders() }
