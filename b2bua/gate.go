package b2bua

import (
	"bytes"
	"encoding/hex"
	"hash/maphash"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
)

// The gate stands before sipgo on a zone's UDP listeners. A datagram from
// one of the zone's peers, a response, or a request of a dialog parapet
// has up passes to sipgo as it is. Any other request comes from an
// outsider, and never reaches sipgo's transaction layer: it gets at most
// one 403, written here, statelessly (RFC 3261 section 8.2.7: nothing is
// retransmitted, nothing is kept), within the outsider budgets, or
// nothing; and it is counted in the zone's outsider tally, never recorded
// alone. A spoofed INVITE thus draws at most one response of about its own
// size, and a flood from any number of addresses costs a bounded number of
// responses and records.
//
// Requests over TCP and TLS come on connections the listener's budgets
// already admitted; the handlers judge them (refuseOutsider).

// gate is zone z's read filter.
func (s *Server) gate(z *zone) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		ua, ok := info.RemoteAddr.(*net.UDPAddr)
		if !ok {
			return data, nil
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		if s.flowKeepAlive(z, info.LocalAddr, src, data) {
			// A keep-alive (a CRLF or a STUN Binding request, RFC 5626
			// section 4.4.1) keeps a NAT binding open; it is no request,
			// and only a registered user's gets an answer (keepalive.go).
			return nil, nil
		}
		pol := s.rules.Load().zone(z.name)
		if isResponse(data) {
			return data, nil
		}
		if pol.AdmitsSource(src.Addr()) || s.reg.knowsCallID(headerValue(data, "call-id", "i")) ||
			s.trunks.admitsRawLine(z.name, data) {
			if code, why := rawFault(data); code != 0 {
				// What sipgo would drop unanswered (rawcheck.go).
				s.stats.parseErrors.Add(1)
				s.answerRaw(z, info.LocalAddr, src, data, code, why)
				return nil, nil
			}
			return data, nil
		}
		if pol.Mode == policy.ModeObserve && (s.budget.Load().allow(src.Addr()) || s.emergencyOutsider(data, src.Addr())) {
			// Observe mode lets outsiders in (recorded would_reject),
			// within the outsider budgets, or, for an emergency INVITE,
			// within their own (sosgate.go).
			return data, nil
		}
		s.outsiderDatagram(z, info.LocalAddr, src, data)
		return nil, nil // never an error: sipgo would stop reading the socket
	}
}

// outsiderDatagram handles a request from outside zone z's peers that
// arrived on the UDP socket bound to local.
func (s *Server) outsiderDatagram(z *zone, local net.Addr, src netip.AddrPort, data []byte) {
	s.evMu.RLock() // until counted: see drainEvents
	defer s.evMu.RUnlock()
	method := methodOf(data)
	if !s.budget.Load().allow(src.Addr()) {
		s.tallyOutsiderLocked(z, src.Addr(), method, fateOverBudget)
		return
	}
	msg, err := sip.ParseMessage(data)
	req, ok := msg.(*sip.Request)
	if err != nil || !ok {
		s.stats.parseErrors.Add(1)
		s.tallyOutsiderLocked(z, src.Addr(), method, fateDropped)
		return
	}
	req.SetSource(src.String())
	if ackOfOurs(req) {
		return // completes the 403's transaction: no request of its own
	}
	scanner := isScanner(req)
	zr := s.rules.Load().zones[z.name]
	fate := fateRefused
	switch {
	case zr.drops(scanner), req.IsAck():
		// An ACK gets nothing in any case (it acknowledges a 403).
		fate = fateDropped
	default:
		// A malformed request gets the same 403 as any other (a stranger
		// learns nothing of the parser), when one can be routed at all.
		if req.Via() == nil {
			fate = fateDropped
		} else if err := z.writeTo(local, src, statelessForbidden(req)); err != nil {
			s.log.Debug("stateless 403 not sent", "zone", z.name, "error", err)
			fate = fateDropped
		}
	}
	if scanner {
		fate = fateScanner
	}
	s.tallyOutsiderLocked(z, src.Addr(), method, fate)
}

// statelessForbidden is the 403 for req: the headers RFC 3261 section
// 8.2.6.2 asks for and nothing else (no Server, Allow or Warning: a
// stranger learns nothing about what answers), with a To tag derived from
// the request, so that a retransmitted request gets the same response.
func statelessForbidden(req *sip.Request) *sip.Response {
	tagged := req.To() != nil && req.To().Params.Has("tag")
	res := sip.NewResponseFromRequest(req, 403, reasonPhrase(403), nil)
	res.SipVersion = "SIP/2.0"
	if to := res.To(); to != nil && !tagged {
		to.Params.Add("tag", statelessTag(req)) // replaces sipgo's random one
	}
	return res
}

var tagSeed = maphash.MakeSeed()

// hashBytes is a keyed hash of b (the seed is the process's).
func hashBytes(b []byte) uint64 { return maphash.Bytes(tagSeed, b) }

// ackOfOurs reports whether req is the ACK of a stateless 403 parapet
// sent: its To tag is the one statelessTag gave (an ACK of a non-2xx
// response has the INVITE's branch, RFC 3261 section 17.1.1.3).
func ackOfOurs(req *sip.Request) bool {
	if !req.IsAck() || req.To() == nil {
		return false
	}
	tag, _ := req.To().Params.Get("tag")
	return tag == statelessTag(req)
}

// statelessTag is a To tag that is the same for every copy of a request:
// a keyed hash of its Call-ID, From tag and branch.
func statelessTag(req *sip.Request) string {
	var h maphash.Hash
	h.SetSeed(tagSeed)
	if cid := req.CallID(); cid != nil {
		h.WriteString(string(*cid))
	}
	if f := req.From(); f != nil {
		tag, _ := f.Params.Get("tag")
		h.WriteString("|" + tag)
	}
	if v := req.Via(); v != nil {
		branch, _ := v.Params.Get("branch")
		h.WriteString("|" + branch)
	}
	var b [8]byte
	n := h.Sum64()
	for i := range b {
		b[i] = byte(n >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// writeTo sends res from the zone's UDP socket bound to local to dst.
func (z *zone) writeTo(local net.Addr, dst netip.AddrPort, res *sip.Response) error {
	c := z.udp[local.String()]
	if c == nil {
		return net.UnknownNetworkError("no UDP socket at " + local.String())
	}
	var buf bytes.Buffer
	res.StringWrite(&buf)
	_, err := c.WriteToUDPAddrPort(buf.Bytes(), dst)
	return err
}

// scannerMarks are what SIP scanners write in User-Agent or From:
// SIPVicious (friendly-scanner is its default), sipcli, sipsak, SIPScan,
// sundayddr, iWar, VaxSIPUserAgent, pplsip, smap. Matched without regard to
// case, anywhere in the header.
var scannerMarks = []string{"friendly-scanner", "sipvicious", "sipcli", "sipsak", "sip-scan", "sipscan",
	"sundayddr", "iwar", "vaxsipuseragent", "pplsip", "smap"}

// isScanner reports whether req carries a known scanner's signature.
func isScanner(req *sip.Request) bool {
	var vals []string
	if h := req.GetHeader("User-Agent"); h != nil {
		vals = append(vals, h.Value())
	}
	if f := req.From(); f != nil {
		vals = append(vals, f.DisplayName, f.Address.User)
	}
	for _, v := range vals {
		v = strings.ToLower(v)
		for _, m := range scannerMarks {
			if strings.Contains(v, m) {
				return true
			}
		}
	}
	return false
}

// isResponse reports whether a datagram is a SIP response (its start
// line begins with the version).
func isResponse(data []byte) bool { return bytes.HasPrefix(data, []byte("SIP/2.0 ")) }

// knownMethods are the methods a tally names; others count as "other",
// so that a stranger cannot fill it with invented names.
var knownMethods = []string{"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "INFO",
	"SUBSCRIBE", "NOTIFY", "UPDATE", "MESSAGE", "REFER", "PUBLISH"}

// methodOf is the method of a request's start line, from knownMethods or
// "other".
func methodOf(data []byte) string {
	tok, _, _ := bytes.Cut(data[:min(len(data), 16)], []byte(" "))
	for _, m := range knownMethods {
		if string(tok) == m {
			return m
		}
	}
	return "other"
}

// headerValue returns the value of the first header of the message head
// in data named long or, in compact form, short (lower case), trimmed; nil
// when there is none. It reads only up to the blank line that ends the
// head and allocates nothing.
func headerValue(data []byte, long, short string) []byte {
	_, rest, ok := bytes.Cut(data, []byte("\n")) // the start line
	for ok {
		var line []byte
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return nil
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found {
			continue
		}
		name = bytes.TrimRight(name, " \t")
		if bytes.EqualFold(name, []byte(long)) || short != "" && bytes.EqualFold(name, []byte(short)) {
			return bytes.TrimSpace(value)
		}
	}
	return nil
}

// isKeepAlive reports whether a datagram is a keep-alive: one or two CRLFs
// and nothing else.
func isKeepAlive(data []byte) bool {
	return len(data) > 0 && len(data) <= 4 && len(bytes.Trim(data, "\r\n")) == 0
}
