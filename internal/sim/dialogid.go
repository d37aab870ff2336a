package sim

// DialogID returns the session's dialog id as this peer knows it (RFC 3261
// section 12): its Call-ID, this peer's tag and the other side's, as a
// Replaces header (RFC 3891) would name it.
func (s *Session) DialogID() (callID, localTag, remoteTag string) {
	if s.uac != nil {
		from := s.uac.InviteRequest.From().Params.GetOr("tag", "")
		to := s.uac.InviteResponse.To().Params.GetOr("tag", "")
		return s.callID, from, to
	}
	from := s.uas.InviteRequest.From().Params.GetOr("tag", "")
	to := s.uas.InviteResponse.To().Params.GetOr("tag", "")
	return s.callID, to, from
}
