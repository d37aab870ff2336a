package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Register sends a REGISTER for the peer's name at domain to proxy (a SIP
// URI: where the REGISTER goes, as an outbound proxy), over the peer's
// transport, answering a 401 or 407 with creds. It returns the final
// response. The connection it opens stays in the peer's pool, so calls
// to the binding can come back over it.
func (p *Peer) Register(ctx context.Context, proxy, domain string, expires int, creds Credentials) (*sip.Response, error) {
	var dst sip.Uri
	if err := sip.ParseUri(proxy, &dst); err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	req.SetDestination(fmt.Sprintf("%s:%d", dst.Host, dst.Port))
	aor := sip.Uri{Scheme: "sip", User: p.cfg.Name, Host: domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	ct := p.contact()
	req.AppendHeader(&ct)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(sip.NewHeader("User-Agent", p.Product()))
	if p.cfg.Transport == "udp" {
		req.Laddr = sip.Addr{IP: p.addr.Addr().AsSlice(), Port: int(p.addr.Port())}
	}
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		return p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: creds.Username, Password: creds.Password})
	}
	return res, nil
}

// Options sends an OPTIONS to target (a SIP URI) over the peer's
// transport, as a keep-alive ping, and returns the response.
func (p *Peer) Options(ctx context.Context, target string) (*sip.Response, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, err
	}
	req := sip.NewRequest(sip.OPTIONS, uri)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.Name, Host: p.addr.Addr().String()}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(12))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri})
	if p.cfg.Transport == "udp" {
		req.Laddr = sip.Addr{IP: p.addr.Addr().AsSlice(), Port: int(p.addr.Port())}
	}
	return p.cli.Do(ctx, req)
}
