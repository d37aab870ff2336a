package b2bua

import (
	"slices"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// record builds the call's compliance record. It never carries key
// material or SDP: only what was negotiated and counted.
func (c *Call) record() *compliance.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endAt.IsZero() {
		c.endAt = time.Now()
	}
	return &compliance.Record{Type: compliance.TypeCall, Call: c.callLocked(c.endAt)}
}

// snapshot is the call's record as it stands now, for the live-call
// journal: built by the same code as the final record, with no outcome yet
// and the time of the snapshot as its end.
func (c *Call) snapshot() *compliance.Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.endAt
	if end.IsZero() {
		end = time.Now()
	}
	return c.callLocked(end)
}

// callLocked builds the call of its record from what is known now, ended
// at end. Caller holds c.mu.
func (c *Call) callLocked(end time.Time) *compliance.Call {
	pseudo := c.env.pseudo
	id := func(v string) string {
		if pseudo == nil {
			return v
		}
		return pseudo.Token(v)
	}
	call := &compliance.Call{
		ID:               c.id,
		Caller:           id(c.caller),
		Callee:           id(c.callee),
		Pseudonymized:    pseudo != nil,
		Emergency:        c.emergency,
		EmergencyService: c.dialled.service,
		Start:            c.start.UTC(),
		End:              end.UTC(),
		Disposition:      c.disposition,
		SIPStatus:        c.status,
		EndReason:        c.endReason,
		PolicyHash:       c.rules.hash,
		Decisions:        append([]policy.Decision{}, c.decisions...),
	}
	if c.route != nil {
		call.Route = c.route.Name
	}
	flowed := !c.answered.IsZero()
	if flowed {
		t := c.answered.UTC()
		call.Answer = &t
		ms := max(end.Sub(c.answered), 0).Milliseconds()
		call.DurationMS = &ms
	}
	codec := c.codecLocked()
	// The legs a transfer replaced come first, each before the leg that
	// replaced it.
	for _, d := range c.departed {
		call.Legs = append(call.Legs, c.legRecord(d, flowed, codec))
	}
	for _, t := range c.transfers {
		t.Target, t.ReferredBy = id(t.Target), id(t.ReferredBy)
		call.Transfers = append(call.Transfers, t)
	}
	call.Legs = append(call.Legs, c.legRecord(c.a, flowed, codec))
	if c.b != nil && c.b.attempted {
		call.Legs = append(call.Legs, c.legRecord(c.b, flowed, codec))
	}
	return call
}

// codecLocked is the codec of the call's media: the first codec of the
// latest answer on either leg for the first stream that has one (parapet
// relays the same formats on both legs). "" before any answer. Caller
// holds c.mu.
func (c *Call) codecLocked() string {
	for _, l := range []*leg{c.a, c.b} {
		if l == nil || l.neg == nil || !l.neg.RemoteIsAnswer() || l.neg.Remote() == nil {
			continue
		}
		for i, st := range l.neg.Remote().Streams {
			if l.neg.Stream(i).Active {
				if codec := st.Codec(); codec != "" {
					return codec
				}
			}
		}
	}
	return ""
}

// legRecord describes one leg; codec is the call's (codecLocked). Caller
// holds c.mu.
func (c *Call) legRecord(l *leg, flowed bool, codec string) compliance.Leg {
	out := compliance.Leg{
		Role:      l.role,
		Zone:      l.zone.name,
		Transport: l.transport.String(),
		Local:     l.local,
		Remote:    l.remote,
		UserAgent: l.userAgent,
		CallID:    l.callID,
		Trunk:     l.trunk,
		TLS:       tlsInfo(l.sig.TLS),

		CallerCredentials: l.callerCreds,
	}
	if l.role == compliance.RoleB {
		out.Attempts = slices.Clone(c.attempts)
	}
	if l.flow != nil {
		out.Flow = l.flow.token
	}
	if p := c.env.pseudo; p != nil {
		out.CallID = p.CallID(l.callID)
	}
	c.identityRecord(l, &out)
	o := policy.LegOutcome{Signaling: l.sig, SourceAdmitted: l.admitted, Originated: l.role != compliance.RoleA && l.uas == nil,
		MediaFlowed: flowed}
	// A B leg over TCP or TLS with no connection noted and no response: the
	// dial or the handshake failed, and nothing was sent.
	o.NotConnected = o.Originated && l.transport != policy.TransportUDP && l.local == "" && l.remote == ""
	// Media is recorded once negotiated: the peer sent its SDP (the offer
	// on leg A; the answer, or a delayed offer, on leg B).
	if c.relay != nil && l.neg != nil && len(l.neg.Streams()) > 0 && l.neg.Remote() != nil {
		m, kx, unkeyed := c.legMediaRecord(l, codec)
		out.Media = m
		o.SRTP = m.SRTPSuite != "" && !unkeyed
		o.Suite = policy.Suite(m.SRTPSuite)
		o.KeyExchange = kx
		if unkeyed {
			o.MediaFlowed = false // nothing can flow on a leg without keys
		}
		o.AuthFailures, o.Replays, o.Unprotected = m.AuthFailures, m.Replays, m.Unprotected
	}
	out.Controls = policy.LegFindings(l.pol, o)
	return out
}

// legMediaRecord is what leg l's media negotiated and carried, with its key
// exchange, and whether a DTLS-SRTP stream of it never got its keys.
func (c *Call) legMediaRecord(l *leg, codec string) (m *compliance.LegMedia, kx policy.KeyExchange, unkeyed bool) {
	if f := l.frozen; f != nil {
		m := *f.media
		return &m, f.kx, f.unkeyed
	}
	m = &compliance.LegMedia{Codec: codec}
	for i, st := range l.neg.Streams() {
		if !st.Active {
			continue
		}
		m.Streams++
		if m.Profile == "" {
			m.Profile = st.Proto
			m.RTCPMux = st.Mux
		}
		switch {
		case st.DTLS:
			kx = policy.KeyExchangeDTLS
			var k media.Keying
			if i < len(c.streams) && c.streams[i] != nil {
				k, _ = c.streams[i].Keying(l.side)
			}
			if !dtlsRecord(m, st, k) {
				unkeyed = true
			}
		case st.Ours != nil && m.SRTPSuite == "":
			kx = policy.KeyExchangeSDES
			m.SRTPSuite = st.Ours.Suite
		}
	}
	m.KeyExchange = kx.String()
	k := countersSince(c.relay.Counters(l.side), l.mediaBase)
	m.PacketsIn, m.PacketsOut, m.BytesIn, m.BytesOut = k.PacketsIn, k.PacketsOut, k.BytesIn, k.BytesOut
	m.AuthFailures, m.Replays, m.WrongSource, m.Malformed = k.AuthFailures, k.Replays, k.WrongSource, k.Malformed
	m.DroppedBeforeAnswer = k.BeforeAnswer
	m.Unprotected, m.STUNPackets, m.DTLSPackets = k.Unprotected, k.STUN, k.DTLS
	return m, kx, unkeyed
}

// dtlsRecord notes a DTLS-SRTP stream's role, peer certificate and suite
// (or why its handshake failed) in m, the first stream's winning. It
// reports whether the stream got its keys.
func dtlsRecord(m *compliance.LegMedia, st media.StreamState, k media.Keying) bool {
	if m.DTLSRole == "" {
		m.DTLSRole = "server"
		if st.Setup == "active" {
			m.DTLSRole = "client"
		}
	}
	if len(k.PeerCert.Value) > 0 && m.DTLSPeerCert == "" {
		m.DTLSPeerCert = k.PeerCert.String()
	}
	if !k.Done {
		if k.Err != "" && m.KeyingError == "" {
			m.KeyingError = k.Err
		}
		return false
	}
	if m.SRTPSuite == "" {
		m.SRTPSuite = k.Suite
	}
	return true
}

func tlsInfo(t *policy.TLSFacts) *compliance.TLSInfo {
	if t == nil {
		return nil
	}
	ti := &compliance.TLSInfo{Version: t.Version.String(), CipherSuite: t.CipherSuite, ServerName: t.ServerName}
	if t.PeerCert != nil {
		ti.PeerCert = certInfo(*t.PeerCert)
	}
	return ti
}

func certInfo(c policy.CertFacts) *compliance.CertInfo {
	return &compliance.CertInfo{Subject: c.Subject, Issuer: c.Issuer, SANs: c.SANs, SHA256: c.SHA256, NotAfter: c.NotAfter,
		Verified: c.Verified, VerifyError: c.VerifyError, AnchorSHA256: c.AnchorSHA256}
}

// finish closes the relay, writes the call's one record, and forgets it.
func (c *Call) finish() {
	c.recordOnce.Do(func() {
		if c.relay != nil {
			c.relay.Close()
		}
		// Leg A outlives the record while its ACK may still come.
		late := c.lateAck != nil && c.a.uas != nil
		// The relay is closed: its counters are final.
		var counters media.Counters
		if r := c.meter.Load(); r != nil {
			counters = r.Counters(media.SideA).Add(r.Counters(media.SideB))
		}
		c.env.reg.forget(c, counters, late)
		if late {
			c.env.reg.wg.Add(1)
			acked := c.lateAck
			c.goSafe("bye after a late ACK", func() { c.byeOnLateAck(acked) })
		} else if c.a.uas != nil {
			c.a.uas.Close()
		} else if c.a.uac != nil {
			c.a.uac.Close() // a transfer's leg
		}
		if c.b != nil && c.b.uac != nil {
			c.b.uac.Close()
		}
		c.mu.Lock()
		if c.disposition == "" {
			c.disposition, c.status, c.endReason = compliance.DispositionFailed, 500, "call ended without an outcome"
		}
		c.mu.Unlock()
		c.env.reg.releaseSlots(c.limits)
		if c.folded {
			return // counted in the zone's outsider tally, or in the call it joined
		}
		c.journalClose()
		rec := c.record()
		c.env.stats.call(c.disposition)
		c.env.rec.append(rec)
		c.log.Info("call ended", "disposition", c.disposition, "status", c.status, "reason", c.endReason)
	})
}
