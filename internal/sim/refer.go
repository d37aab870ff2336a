package sim

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Notify is one NOTIFY of a refer subscription (RFC 3515) a session
// received.
type Notify struct {
	Event, State string
	// Frag is the message/sipfrag body's status line ("SIP/2.0 200 OK").
	Frag string
}

// Refer sends a REFER asking the other side to transfer this session to
// target (a Refer-To URI), and returns the status of its response.
func (s *Session) Refer(ctx context.Context, target string) (int, error) {
	req := sip.NewRequest(sip.REFER, s.target())
	req.AppendHeader(sip.NewHeader("Refer-To", "<"+target+">"))
	req.AppendHeader(sip.NewHeader("Referred-By", "<sip:"+s.p.cfg.Name+"@"+s.p.addr.String()+">"))
	res, err := s.do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

// Notifies returns the NOTIFYs the session received, in order.
func (s *Session) Notifies() []Notify {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notify(nil), s.notifies...)
}

// onNotify takes a NOTIFY inside a session's dialog: 200, and noted.
func (p *Peer) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	p.count(req)
	s := p.session(req)
	if s == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	frag, _, _ := strings.Cut(string(req.Body()), "\r\n")
	n := Notify{Event: headerValue(req, "Event"), State: headerValue(req, "Subscription-State"), Frag: frag}
	s.mu.Lock()
	s.notifies = append(s.notifies, n)
	s.mu.Unlock()
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}
