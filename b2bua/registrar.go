package b2bua

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// relayTimeout bounds the wait for the registrar's final response
// (RFC 3261 Timer F: 64*T1).
const relayTimeout = 32 * time.Second

// relayRegister relays a REGISTER from zone z's users to the zone's
// registrar with parapet in the path (RFC 3327), relays the registrar's
// final response back (its digest challenges untouched), and keeps the
// binding its 2xx grants (docs/config.md, zone › registrar).
func (s *Server) relayRegister(z *zone, req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		z.respond(tx, req, 501, "Not Implemented", "")
		return
	}
	if !s.admit(z, req, tx) {
		return
	}
	reg := z.cfg.Registrar
	if reg == nil {
		z.respond(tx, req, 405, "Method Not Allowed", "")
		return
	}
	if !s.inspect(z, req, tx) {
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		z.respond(tx, req, 483, reasonPhrase(483), "")
		return
	}
	rz := s.byName[reg.Zone]
	sig := z.signaling(req, s.rules.Load().zone(z.name))
	fl := s.binds.flowFor(z, req, sig)
	fwd := forwardRegister(req, rz, reg.Target, fl)
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-s.stopping:
			stop()
		case <-ctx.Done():
		}
	}()
	rtx, err := rz.cli.TransactionRequest(ctx, fwd, sipgo.ClientRequestAddVia)
	if err != nil {
		s.log.Warn("register relay: sending to the registrar failed", "zone", z.name, "registrar", reg.Target.URI, "error", sendError(err))
		z.respond(tx, req, 503, reasonPhrase(503), "the registrar cannot be reached")
		return
	}
	defer rtx.Terminate()
	res := awaitFinal(ctx, rtx)
	if res == nil {
		z.respond(tx, req, 408, reasonPhrase(408), "the registrar did not answer")
		return
	}
	s.relayRegisterResponse(z, req, tx, res, fl)
}

// awaitFinal waits for the final response of a client transaction, or nil
// when it failed or ctx ended.
func awaitFinal(ctx context.Context, rtx sip.ClientTransaction) *sip.Response {
	for {
		select {
		case res := <-rtx.Responses():
			if res.StatusCode >= 200 {
				return res
			}
		case <-rtx.Done():
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// forwardRegister is req as parapet forwards it to the registrar at
// target, out of zone rz: the phone's headers as they came (the digest is
// end to end), the top Route (parapet itself) removed, Max-Forwards one
// less, and a Path naming parapet on the registrar's side with the flow's
// token, and the ob parameter when the user agent asks for outbound (RFC
// 5626 section 5.1: parapet is its first hop, the edge proxy). Require:
// path makes a registrar without Path refuse rather than store a contact
// that would bypass parapet. sipgo adds parapet's Via.
func forwardRegister(req *sip.Request, rz *zone, target topology.Target, fl *flow) *sip.Request {
	fwd := req.Clone()
	fwd.RemoveHeader("Route")
	if mf := fwd.MaxForwards(); mf != nil {
		mf.Dec()
	}
	t := target.Transport
	path := sip.Uri{Scheme: "sip", User: fl.token, Host: rz.host(t), UriParams: sip.NewParams()}
	if a, ok := rz.bound[t]; ok {
		path.Port = int(a.Port())
	}
	if t != policy.TransportUDP {
		path.UriParams.Add("transport", t.String())
	}
	path.UriParams.Add("lr", "")
	if fl.outbound {
		path.UriParams.Add("ob", "")
	}
	fwd.PrependHeader(sip.NewHeader("Path", "<"+path.String()+">"))
	if !hasOptionTag(req, "Supported", "path") {
		fwd.AppendHeader(sip.NewHeader("Supported", "path"))
	}
	fwd.AppendHeader(sip.NewHeader("Require", "path"))
	fwd.SetTransport(strings.ToUpper(t.String()))
	fwd.SetDestination(targetAddr(target.Host, target.Port, t))
	fwd.SetSource("")
	fwd.Laddr = sip.Addr{}
	if ap, ok := rz.bound[policy.TransportUDP]; ok && t == policy.TransportUDP {
		fwd.Laddr = sip.Addr{IP: ap.Addr().AsSlice(), Port: int(ap.Port())}
	}
	return fwd
}

// hasOptionTag reports whether one of req's headers named name lists tag.
func hasOptionTag(req *sip.Request, name, tag string) bool {
	for _, h := range req.GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(v), tag) {
				return true
			}
		}
	}
	return false
}

// targetAddr is host:port of a target, with the transport's default port.
func targetAddr(host string, port int, t policy.Transport) string {
	if port == 0 {
		return hostPort(host, defaultPort(t))
	}
	return hostPort(host, uint16(port))
}

// registerResponseHeaders are the registrar's headers relayed to the
// phone; the rest (its Server, Warning, anything naming the PBX side's
// inside) stays behind. Require carries the registrar's "outbound" (RFC
// 5626 section 6: the binding is the instance's flow), Flow-Timer the
// keep-alive interval it asks for.
var registerResponseHeaders = []string{"To", "Contact", "Expires", "Min-Expires", "WWW-Authenticate",
	"Proxy-Authenticate", "Authentication-Info", "Path", "Service-Route", "Date", "Supported", "Require", "Flow-Timer"}

// relayRegisterResponse answers the phone with the registrar's final
// response res, and keeps (or drops) the flow's binding on a 2xx. A 420
// naming path is the registrar refusing Path: the phone gets 502, since
// it asked for nothing unsupported.
func (s *Server) relayRegisterResponse(z *zone, req *sip.Request, tx sip.ServerTransaction, res *sip.Response, fl *flow) {
	if res.StatusCode == 420 && strings.Contains(strings.ToLower(responseHeader(res, "Unsupported")), "path") {
		s.log.Error("register relay: the registrar does not support Path (RFC 3327); users cannot register through parapet",
			"zone", z.name, "registrar", z.cfg.Registrar.Target.URI)
		z.respond(tx, req, 502, reasonPhrase(502), "the registrar does not support Path (RFC 3327)")
		return
	}
	out := sip.NewResponseFromRequest(req, res.StatusCode, reasonPhrase(res.StatusCode), nil)
	out.RemoveHeader("To") // the registrar's, with its tag
	for _, name := range registerResponseHeaders {
		for _, h := range res.GetHeaders(name) {
			out.AppendHeader(sip.HeaderClone(h))
		}
	}
	if out.To() == nil {
		if to := req.To(); to != nil {
			out.AppendHeader(sip.HeaderClone(to))
		}
	}
	z.commonHeaders(out)
	if res.IsSuccess() {
		s.binds.granted(s, fl, req, res)
	}
	z.send(tx, out)
}

// responseHeader is the value of res's first header named name, or "".
func responseHeader(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
