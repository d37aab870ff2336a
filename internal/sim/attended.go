package sim

import (
	"context"

	"github.com/emiago/sipgo/sip"
)

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

// ReferFrom is Refer with referredBy as the REFER's Referred-By header
// (RFC 3892), or none when it is "".
func (s *Session) ReferFrom(ctx context.Context, target, referredBy string) (int, error) {
	req := sip.NewRequest(sip.REFER, s.target())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	if referredBy != "" {
		req.AppendHeader(sip.NewHeader("Referred-By", referredBy))
	}
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}
