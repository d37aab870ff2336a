package b2bua

import (
	"context"
	"errors"
	"fmt"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Digest challenges to what parapet sends inside leg B's dialog: a
// carrier may challenge any request (RFC 3261 section 22.2), a re-INVITE,
// UPDATE, INFO or BYE as well as the first INVITE (whose challenges
// sipgo's WaitAnswer answers). Each is answered once with the route's
// credentials; a second challenge is the peer's final word.

// challenged reports whether res asks for credentials.
func challenged(res *sip.Response) bool {
	return res != nil && (res.StatusCode == sip.StatusUnauthorized || res.StatusCode == sip.StatusProxyAuthRequired)
}

// doIn sends req inside leg l's dialog and waits for its final response;
// on leg B, a 401 or 407 is answered once with the route's credentials.
func (c *Call) doIn(ctx context.Context, l *leg, req *sip.Request) (*sip.Response, error) {
	res, err := l.do(ctx, req)
	if err != nil || l != c.b || !challenged(res) || c.route.Username == "" || c.route.Password == "" {
		return res, err
	}
	if err := authorize(req, res, c.route.Username, c.route.Password); err != nil {
		c.log.Warn("digest challenge on leg b not answered", "method", string(req.Method), "error", err)
		return res, nil
	}
	// A new transaction of the dialog: the dialog writes a new Via, the
	// next CSeq and its route set again.
	req.RemoveHeader("Via")
	req.RemoveHeader("Route")
	return l.do(ctx, req)
}

// byeBOnce sends BYE on leg B and, when it is challenged, again with the
// route's credentials.
func (c *Call) byeBOnce(ctx context.Context) error {
	uac := c.b.uac
	err := uac.Bye(ctx)
	var de sipgo.ErrDialogResponse
	if !errors.As(err, &de) || !challenged(de.Res) || c.route.Username == "" || c.route.Password == "" {
		return err
	}
	bye := sip.NewRequest(sip.BYE, c.b.target())
	if err := authorize(bye, de.Res, c.route.Username, c.route.Password); err != nil {
		return fmt.Errorf("BYE challenged: %w", err)
	}
	res, err := uac.Do(ctx, bye)
	switch {
	case err != nil:
		return err
	case !res.IsSuccess():
		return sipgo.ErrDialogResponse{Res: res}
	}
	return nil
}

// authorize adds to req the credentials res's challenge asks for
// (Authorization for a 401's WWW-Authenticate, Proxy-Authorization for a
// 407's Proxy-Authenticate).
func authorize(req *sip.Request, res *sip.Response, user, password string) error {
	chalHdr, credHdr := credentialHeader(res)
	h := res.GetHeader(chalHdr)
	if h == nil {
		return fmt.Errorf("%d without %s", res.StatusCode, chalHdr)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return fmt.Errorf("unreadable %s: %w", chalHdr, err)
	}
	chal.Algorithm = sip.ASCIIToUpper(chal.Algorithm)
	cred, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: req.Recipient.Addr(),
		Username: user, Password: password})
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	req.RemoveHeader(credHdr)
	req.AppendHeader(sip.NewHeader(credHdr, cred.String()))
	return nil
}
