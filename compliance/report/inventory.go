package report

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/policy"
)

// weakness ranks: lower is worse, and comes first in a peer's issues and in
// the inventory.
var weaknessRank = map[string]int{
	WeakTLSVersion: 0,
	WeakNoTLS:      1,
	WeakNoCert:     2,
	WeakBadCert:    3,
	WeakPlainRTP:   4,
	WeakSuite:      5,
}

// weaknessAction says what to do about a weakness.
var weaknessAction = map[string]string{
	WeakTLSVersion: "upgrade the firmware to one with TLS 1.2 or later, or replace the device (TLS 1.0/1.1 are deprecated, RFC 8996; parapet refuses them)",
	WeakNoTLS:      "configure SIP over TLS (transport=tls, port 5061) on the device; if it cannot do TLS 1.2, replace it or move it to an internal zone",
	WeakNoCert:     "install a client certificate issued by a CA the zone trusts, or move the device to a zone that does not ask for one",
	WeakBadCert:    "renew or replace the device's certificate with one issued by a CA the zone trusts",
	WeakPlainRTP:   "turn on SRTP (SDES over TLS, or DTLS-SRTP) in the device; if it has none, replace it, or keep it in an internal zone and let parapet secure the onward leg",
	WeakSuite:      "configure AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM in the device (32-bit tags and NULL suites are weak, RFC 3711 §9.5)",
}

// peer returns the inventory entry of the device at addr that names itself
// userAgent, creating it; nil once the table is full (the record is then
// counted as omitted). A peer is an address and a device: phones of several
// models behind one NAT address are apart, and so is a phone before and
// after a firmware upgrade (the old entry's last seen says when it stopped).
// A refused TLS handshake shows no User-Agent, so it is an entry of its own.
func (b *Builder) peer(addr, userAgent string) *peerAcc {
	host := hostOf(addr)
	if host == "" {
		return nil
	}
	key := host + "\x00" + userAgent
	p := b.peers[key]
	if p == nil {
		if len(b.peers) >= 10*b.opts.MaxPeers {
			b.peersDropped++
			return nil
		}
		p = &peerAcc{Peer: Peer{Address: host, UserAgent: userAgent}, zones: map[string]bool{}, issues: map[string]*Issue{}}
		b.peers[key] = p
	}
	return p
}

// weakness is one weakness seen in one record.
type weakness struct {
	kind, offered string
	refused       bool
}

// note adds the weaknesses one record showed for the peer at addr.
func (b *Builder) note(addr, zone, userAgent, certSubject string, t time.Time, ws []weakness) {
	if len(ws) == 0 {
		return
	}
	p := b.peer(addr, userAgent)
	if p == nil {
		return
	}
	if p.Seen == 0 || t.Before(p.FirstSeen) {
		p.FirstSeen = t
	}
	if t.After(p.LastSeen) || p.Seen == 0 {
		p.LastSeen = t
	}
	p.Seen++
	if zone != "" && len(p.zones) < 20 {
		p.zones[zone] = true
	}
	if certSubject != "" {
		p.CertSubject = certSubject
	}
	for _, w := range ws {
		key := w.kind + "\x00" + w.offered
		is := p.issues[key]
		if is == nil {
			if len(p.issues) >= 32 {
				continue
			}
			is = &Issue{Kind: w.kind, Offered: w.offered}
			p.issues[key] = is
		}
		is.Count++
		// A capture shows what happened, not what parapet refused: its
		// decisions are what parapet would have done.
		if w.refused && b.opts.Kind != KindCapture {
			is.Refused++
		}
	}
}

// inventoryConn notes the weaknesses a connection event shows: a TLS
// handshake refused below the floor or for its certificate.
func (b *Builder) inventoryConn(rec *compliance.Record) {
	ev := rec.Conn
	if ev.Event != compliance.EventTLSRefused {
		return
	}
	var ws []weakness
	subject := ""
	if ev.PeerCert != nil {
		subject = ev.PeerCert.Subject
	}
	switch {
	case ev.ClientMaxVersion != "" && !tlsAtLeast12(ev.ClientMaxVersion):
		ws = append(ws, weakness{WeakTLSVersion, "at most " + ev.ClientMaxVersion, true})
	case certProblem(ev) == WeakNoCert:
		ws = append(ws, weakness{WeakNoCert, "no client certificate", true})
	case certProblem(ev) == WeakBadCert:
		off := "a certificate that did not verify"
		if ev.PeerCert != nil && ev.PeerCert.VerifyError != "" {
			off += ": " + ev.PeerCert.VerifyError
		}
		ws = append(ws, weakness{WeakBadCert, off, true})
	}
	b.note(ev.Remote, ev.Zone, "", subject, rec.Time, ws)
}

// inventoryCall notes the weaknesses each leg of a call shows. refused
// holds zone NUL rule for each rule that rejected the call.
func (b *Builder) inventoryCall(rec *compliance.Record, refused map[string]bool) {
	c := rec.Call
	for i := range c.Legs {
		leg := &c.Legs[i]
		if leg.Remote == "" {
			continue
		}
		was := func(rules ...string) bool {
			for _, r := range rules {
				if refused[leg.Zone+"\x00"+r] {
					return true
				}
			}
			return false
		}
		var ws []weakness
		var authViolated, txViolated bool
		for _, f := range leg.Controls {
			if f.Status != policy.StatusViolated {
				continue
			}
			switch f.Control {
			case policy.ControlAuthentication:
				authViolated = true
			case policy.ControlTransmission:
				txViolated = true
			default: // the other controls are not weaknesses of the peer itself
			}
		}
		subject := ""
		if t := leg.TLS; t != nil {
			if v := tlsVersion(t.Version); v != 0 && v < policy.MinTLSFloor {
				ws = append(ws, weakness{WeakTLSVersion, t.Version, false})
			}
			switch {
			case t.PeerCert == nil && authViolated:
				ws = append(ws, weakness{WeakNoCert, "no certificate", false})
			case t.PeerCert != nil && !t.PeerCert.Verified && authViolated:
				ws = append(ws, weakness{WeakBadCert, strings.TrimSuffix("certificate not verified: "+t.PeerCert.VerifyError, ": "), false})
			}
			if t.PeerCert != nil {
				subject = t.PeerCert.Subject
			}
		} else if leg.Transport != "" && leg.Transport != policy.TransportTLS.String() {
			switch {
			case leg.Role == compliance.RoleA && was(policy.RuleTLSRequired):
				ws = append(ws, weakness{WeakNoTLS, "SIP over " + leg.Transport, true})
			case txViolated:
				ws = append(ws, weakness{WeakNoTLS, "SIP over " + leg.Transport, false})
			}
		}
		if m := leg.Media; m != nil {
			if plainProfile(m.Profile) && (m.KeyExchange == "" || m.KeyExchange == policy.KeyExchangeNone.String()) {
				what := m.Profile
				if leg.Role == compliance.RoleB {
					what += " (answered)"
				}
				ws = append(ws, weakness{WeakPlainRTP, what,
					was(policy.RuleSRTPRequired, policy.RuleAnswerSRTPRequired, policy.RuleDowngrade)})
			}
			if weakSuite(m.SRTPSuite) {
				ws = append(ws, weakness{WeakSuite, m.SRTPSuite, false})
			}
		}
		if leg.Role == compliance.RoleA {
			for _, d := range c.Decisions {
				if d.Zone == leg.Zone && d.Rule == policy.RuleNoAcceptableCrypto && d.Verdict != policy.VerdictAllowed {
					ws = append(ws, weakness{WeakSuite, d.Reason, d.Verdict == policy.VerdictRejected})
				}
			}
		}
		b.note(leg.Remote, leg.Zone, leg.UserAgent, subject, rec.Time, ws)
	}
}

// plainProfile reports whether an SDP transport profile carries RTP in
// clear (RTP/AVP, RTP/AVPF).
func plainProfile(p string) bool {
	return p != "" && strings.HasPrefix(strings.ToUpper(p), "RTP/AVP")
}

// weakSuite reports whether an SRTP suite is weak: a 32-bit tag, or NULL
// encryption or authentication.
func weakSuite(s string) bool {
	u := strings.ToUpper(s)
	return strings.HasSuffix(u, "_32") || strings.Contains(u, "NULL")
}

// inventory returns the inventory, worst peers first.
func (b *Builder) inventory() Inventory {
	inv := Inventory{Peers: []Peer{}}
	for _, p := range b.peers {
		cp := p.Peer
		cp.Zones = make([]string, 0, len(p.zones))
		for z := range p.zones {
			cp.Zones = append(cp.Zones, z)
		}
		slices.Sort(cp.Zones)
		cp.Issues = make([]Issue, 0, len(p.issues))
		for _, is := range p.issues {
			cp.Issues = append(cp.Issues, *is)
		}
		slices.SortFunc(cp.Issues, func(a, b Issue) int {
			if c := cmp.Compare(weaknessRank[a.Kind], weaknessRank[b.Kind]); c != 0 {
				return c
			}
			if c := cmp.Compare(b.Count, a.Count); c != 0 {
				return c
			}
			return strings.Compare(a.Offered, b.Offered)
		})
		var acts []string
		seen := map[string]bool{}
		for _, is := range cp.Issues {
			if !seen[is.Kind] {
				seen[is.Kind] = true
				acts = append(acts, weaknessAction[is.Kind])
			}
		}
		cp.Action = strings.Join(acts, "; ")
		if cp.Action != "" {
			cp.Action = strings.ToUpper(cp.Action[:1]) + cp.Action[1:] + "."
		}
		inv.Peers = append(inv.Peers, cp)
	}
	worst := func(p Peer) int {
		if len(p.Issues) == 0 {
			return len(weaknessRank)
		}
		return weaknessRank[p.Issues[0].Kind]
	}
	slices.SortFunc(inv.Peers, func(a, b Peer) int {
		if c := cmp.Compare(worst(a), worst(b)); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Seen, a.Seen); c != 0 {
			return c
		}
		return strings.Compare(a.Address, b.Address)
	})
	inv.Omitted = b.peersDropped
	if len(inv.Peers) > b.opts.MaxPeers {
		inv.Omitted += len(inv.Peers) - b.opts.MaxPeers
		inv.Peers = inv.Peers[:b.opts.MaxPeers]
	}
	return inv
}
