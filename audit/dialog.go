package audit

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// Bounds per dialog: the hops an INVITE may take (a loop or a forged
// Call-ID cannot grow a dialog without end) and the media addresses its
// SDPs may name (re-INVITEs included).
const (
	maxHops        = 16
	maxDialogAddrs = 64
)

// dialog is one SIP dialog (a Call-ID with an INVITE) seen in clear.
type dialog struct {
	n         int
	callID    string
	caller    string // From user
	callee    string // To user
	start     time.Time
	answer    *time.Time
	end       time.Time
	endReason string
	status    int
	reason    string
	cancelled bool
	trace     bool // read from a text trace
	hops      []*hop
	addrs     []netip.AddrPort // media addresses its SDPs named (sdpIndex keys)
	flows     []*mediaFlow     // flows tied to it
}

// hop is one INVITE's path between two SIP hosts: a leg.
type hop struct {
	src, dst  netip.AddrPort // the INVITE's sender and receiver
	transport policy.Transport
	tlsText   bool   // a text trace's Via said TLS
	ua        string // User-Agent of the INVITE
	server    string // Server (else User-Agent) of the responses
	// callerSDP is the INVITE sender's SDP (the offer, or the answer in
	// the ACK of a delayed offer), calleeSDP the receiver's.
	callerSDP, calleeSDP *media.Description
	sdpErr               string
	delayed              bool // the INVITE carried no SDP
	status               int
}

// sip handles one SIP message from src to dst.
func (a *analyzer) sip(t time.Time, src, dst netip.AddrPort, tr policy.Transport, m *sipMsg) {
	d := a.dialogs[m.CallID]
	switch {
	case m.Request && m.Method == "INVITE":
		if d == nil {
			if len(a.dialogs) >= MaxDialogs {
				a.untracked++
				return
			}
			a.nDialogs++
			a.dialogsIn++
			d = &dialog{n: a.nDialogs, callID: m.CallID, caller: uriUser(m.From), callee: uriUser(m.To), start: t, trace: a.inTrace}
			a.dialogs[m.CallID] = d
		}
		a.invite(d, t, src, dst, tr, m)
	case d == nil:
		return
	case m.Request && m.Method == "ACK":
		if h := d.hopOf(src, dst); h != nil && h.delayed && h.callerSDP == nil {
			h.callerSDP = a.sdp(d, h, m, true)
		}
	case m.Request && m.Method == "CANCEL":
		d.cancelled = true
	case m.Request && m.Method == "BYE":
		d.end = t
		d.endReason = "bye from b"
		if len(d.hops) > 0 && src == d.hops[0].src && (src.IsValid() || uriUser(m.From) == d.caller) {
			d.endReason = "bye from a"
		}
		a.endDialog(d)
	case !m.Request && m.CSeqMethod == "INVITE":
		a.inviteResponse(d, t, src, dst, m)
	}
}

// hopOf finds the hop a message between src and dst belongs to, in either
// direction: same addresses first, then same hosts, then the only hop.
func (d *dialog) hopOf(src, dst netip.AddrPort) *hop {
	for _, h := range d.hops {
		if (h.src == src && h.dst == dst) || (h.src == dst && h.dst == src) {
			return h
		}
	}
	for _, h := range d.hops {
		if (h.src.Addr() == dst.Addr() && h.dst.Addr() == src.Addr()) || (h.src.Addr() == src.Addr() && h.dst.Addr() == dst.Addr()) {
			return h
		}
	}
	if len(d.hops) == 1 {
		return d.hops[0]
	}
	return nil
}

func (a *analyzer) invite(d *dialog, t time.Time, src, dst netip.AddrPort, tr policy.Transport, m *sipMsg) {
	for _, h := range d.hops {
		if h.src == src && h.dst == dst {
			if strings.Contains(m.To, "tag=") { // a re-INVITE: its media addresses
				if sd := a.parseBody(m); sd != nil {
					a.index(d, h, sd, true)
				}
			}
			return // retransmission
		}
	}
	if strings.Contains(m.To, "tag=") && len(d.hops) > 0 {
		// A re-INVITE from the callee's side.
		if h := d.hopOf(src, dst); h != nil {
			if sd := a.parseBody(m); sd != nil {
				a.index(d, h, sd, h.src == src)
			}
		}
		return
	}
	if len(d.hops) >= maxHops {
		a.untracked++
		return
	}
	h := &hop{src: src, dst: dst, transport: tr, ua: printable(m.UserAgent, 200)}
	if d.trace && viaTransport(m.Via) == "tls" {
		// A trace shows SIP that went over TLS in clear (a proxy's own log).
		h.transport, h.tlsText = policy.TransportTLS, true
	}
	d.hops = append(d.hops, h)
	h.callerSDP = a.sdp(d, h, m, true)
	h.delayed = h.callerSDP == nil
}

func (a *analyzer) inviteResponse(d *dialog, t time.Time, src, dst netip.AddrPort, m *sipMsg) {
	h := d.hopOf(src, dst)
	if h == nil {
		return
	}
	if ua := m.Server; ua != "" && h.server == "" {
		h.server = printable(ua, 200)
	} else if h.server == "" && m.UserAgent != "" {
		h.server = printable(m.UserAgent, 200)
	}
	if m.Status < 300 && h.calleeSDP == nil {
		if h.delayed && m.Status >= 200 {
			h.calleeSDP = a.sdp(d, h, m, false)
		} else if !h.delayed {
			h.calleeSDP = a.sdp(d, h, m, false)
		}
	}
	if m.Status < 200 || h.status >= 200 {
		return
	}
	h.status = m.Status
	challenge := m.Status == 401 || m.Status == 407
	if challenge {
		// An authentication challenge: the caller sends the INVITE again
		// with credentials, in the same dialog.
		h.status = 0
	}
	if h != d.hops[0] {
		return
	}
	d.status, d.reason = m.Status, printable(m.Reason, 100)
	if m.Status < 300 {
		at := t
		d.answer, d.end, d.endReason = &at, time.Time{}, ""
		return
	}
	if challenge {
		d.end, d.endReason = t, fmt.Sprintf("%d %s", m.Status, d.reason)
		return
	}
	d.end = t
	d.endReason = fmt.Sprintf("%d %s", m.Status, d.reason)
	a.endDialog(d)
}

// parseBody parses a message's SDP body, or returns nil.
func (a *analyzer) parseBody(m *sipMsg) *media.Description {
	if len(m.Body) == 0 {
		return nil
	}
	ct := strings.ToLower(m.ContentType)
	if ct != "" && !strings.HasPrefix(ct, "application/sdp") {
		return nil
	}
	if ct == "" && !bytes.HasPrefix(m.Body, []byte("v=")) {
		return nil
	}
	sd, err := media.ParseSDP(m.Body)
	if err != nil {
		return nil
	}
	return sd
}

// sdp parses a message's SDP for hop h and indexes its media addresses;
// caller says the SDP is the INVITE sender's.
func (a *analyzer) sdp(d *dialog, h *hop, m *sipMsg, caller bool) *media.Description {
	if len(m.Body) == 0 {
		return nil
	}
	sd := a.parseBody(m)
	if sd == nil {
		if h.sdpErr == "" {
			if _, err := media.ParseSDP(m.Body); err != nil {
				h.sdpErr = err.Error()
			}
		}
		return nil
	}
	a.index(d, h, sd, caller)
	return sd
}

// index remembers the RTP addresses an SDP names, so flows can be tied to
// the dialog.
func (a *analyzer) index(d *dialog, h *hop, sd *media.Description, caller bool) {
	for _, st := range sd.Streams {
		if st.Port == 0 || !st.Addr.IsValid() || st.Addr.IsUnspecified() {
			continue
		}
		ap := netip.AddrPortFrom(st.Addr.Unmap(), uint16(st.Port))
		if _, ok := a.sdpIndex[ap]; !ok && (len(a.sdpIndex) >= MaxFlows || len(d.addrs) >= maxDialogAddrs) {
			a.untracked++
			continue
		}
		a.sdpIndex[ap] = &sdpRef{d: d, h: h, caller: caller, secure: strings.Contains(st.Proto, "SAVP")}
		d.addrs = append(d.addrs, ap)
	}
}

// endDialog judges a dialog and emits its record.
func (a *analyzer) endDialog(d *dialog) {
	if a.dialogs[d.callID] != d {
		return
	}
	delete(a.dialogs, d.callID)
	for _, ap := range d.addrs {
		if r := a.sdpIndex[ap]; r != nil && r.d == d {
			delete(a.sdpIndex, ap)
		}
	}
	call := &compliance.Call{
		ID:            fmt.Sprintf("capture-%d", d.n),
		Caller:        a.pseudo.Token(d.caller),
		Callee:        a.pseudo.Token(d.callee),
		Pseudonymized: true,
		Start:         d.start,
		Answer:        d.answer,
		SIPStatus:     d.status,
		EndReason:     d.endReason,
	}
	switch {
	case d.status >= 200 && d.status < 300:
		call.Disposition = compliance.DispositionAnswered
	case d.status == 487 && d.cancelled:
		call.Disposition = compliance.DispositionCancelled
	case d.status >= 300:
		call.Disposition = compliance.DispositionRejected
	default:
		call.Disposition = compliance.DispositionUnobserved
	}
	call.End = d.end
	if call.End.IsZero() {
		call.End = a.last
		if call.End.Before(d.start) {
			call.End = d.start
		}
		if call.EndReason == "" {
			call.EndReason = "the capture ended before the call did"
		}
	}
	if d.answer != nil {
		ms := call.End.Sub(*d.answer).Milliseconds()
		call.DurationMS = &ms
	}
	for i, h := range d.hops {
		leg, decisions := a.judgeHop(d, h, i)
		call.Legs = append(call.Legs, leg)
		call.Decisions = append(call.Decisions, decisions...)
	}
	a.record(&compliance.Record{Type: compliance.TypeCall, Time: d.start, Call: call})
}

// offerAnswer returns the hop's offer and answer.
func (h *hop) offerAnswer() (offer, answer *media.Description) {
	if h.delayed {
		return h.calleeSDP, h.callerSDP
	}
	return h.callerSDP, h.calleeSDP
}

// judgeHop builds hop i's leg: role a for the first hop (Remote is the
// INVITE's sender), role b for later ones (Remote is the hop's receiver, as
// for a leg parapet dials).
func (a *analyzer) judgeHop(d *dialog, h *hop, i int) (compliance.Leg, []policy.Decision) {
	z := a.zoneFor(h.src, h.dst)
	sig := policy.SignalingFacts{Transport: h.transport, Source: h.src}
	if h.tlsText {
		a.textTLS++
		sig.TLS = &policy.TLSFacts{} // version not visible in a text trace
	}
	leg := compliance.Leg{Role: compliance.RoleA, Zone: z.Policy.Name, Transport: h.transport.String(),
		Remote: addrString(h.src), Local: addrString(h.dst), UserAgent: h.ua, CallID: a.pseudo.CallID(d.callID)}
	remoteIsCaller := i == 0
	if !remoteIsCaller {
		leg.Role, leg.Remote, leg.Local, leg.UserAgent = compliance.RoleB, addrString(h.dst), addrString(h.src), h.server
	}
	offer, answer := h.offerAnswer()
	var decisions []policy.Decision
	of := mediaFacts(offer, nil)
	decisions = append(decisions, policy.Evaluate(policy.Input{Stage: policy.StageOffer, Zone: &z.Policy,
		Signaling: sig, Media: of}))
	if answer != nil {
		decisions = append(decisions, policy.Evaluate(policy.Input{Stage: policy.StageAnswer, Zone: &z.Policy,
			Signaling: sig, Media: mediaFacts(answer, offer)}))
	}
	o := policy.LegOutcome{Signaling: sig, SourceAdmitted: z.Policy.AdmitsSource(h.src.Addr()),
		Originated: !remoteIsCaller, MediaFlowed: h.status >= 200 && h.status < 300 && answer != nil}
	if answer != nil {
		leg.Media = a.legMedia(d, h, offer, answer, remoteIsCaller)
		o.SRTP = leg.Media.KeyExchange != "none"
		o.Suite = policy.Suite(leg.Media.SRTPSuite)
		o.KeyExchange, _ = policy.ParseKeyExchange(leg.Media.KeyExchange)
	} else if offer != nil {
		leg.Media = a.legMedia(d, h, offer, nil, remoteIsCaller)
	}
	leg.Controls = policy.LegFindings(&z.Policy, o)
	if h.tlsText {
		for j := range leg.Controls {
			leg.Controls[j].Detail += " (TLS version not visible in a text trace)"
		}
	}
	return leg, decisions
}

func addrString(ap netip.AddrPort) string {
	if !ap.IsValid() {
		return ""
	}
	return ap.String()
}

// legMedia summarises what the hop's media negotiated and carried. The
// answer settles profile, codec and keying (the offer when no answer came).
func (a *analyzer) legMedia(d *dialog, h *hop, offer, answer *media.Description, remoteIsCaller bool) *compliance.LegMedia {
	settled := answer
	if settled == nil {
		settled = offer
	}
	lm := &compliance.LegMedia{KeyExchange: "none"}
	first := true
	for _, st := range settled.Streams {
		if st.Port == 0 {
			continue
		}
		lm.Streams++
		if !first {
			continue
		}
		first = false
		lm.Profile, lm.RTCPMux = st.Proto, st.RTCPMux
		if answer != nil {
			lm.Codec = st.Codec()
			switch {
			case strings.HasPrefix(st.Proto, "UDP/TLS/") && st.DTLS:
				lm.KeyExchange = "dtls"
			case len(st.Crypto) > 0:
				lm.KeyExchange, lm.SRTPSuite = "sdes", st.Crypto[0].Suite
			}
		}
	}
	// The peer's fingerprint is in the Remote's own SDP.
	remoteSDP := h.calleeSDP
	if remoteIsCaller {
		remoteSDP = h.callerSDP
	}
	if lm.KeyExchange == "dtls" && remoteSDP != nil {
		for _, st := range remoteSDP.Streams {
			if st.Port != 0 && len(st.Fingerprints) > 0 {
				lm.DTLSPeerCert = st.Fingerprints[0].String()
				break
			}
		}
	}
	// Counters from the leg's point of view: "in" is what the Remote sent.
	for _, f := range d.flows {
		if f.ref.h != h {
			continue
		}
		// The flow was sent by the caller side when it goes to the callee's
		// SDP address, or comes from the caller's own.
		byCaller := f.toNamed != f.ref.caller
		if byCaller == remoteIsCaller {
			lm.PacketsIn += f.packets
			lm.BytesIn += f.bytes
		} else {
			lm.PacketsOut += f.packets
			lm.BytesOut += f.bytes
		}
	}
	return lm
}

// mediaFacts turns a parsed SDP into policy facts, as parapet does. For an
// answer, offer is the SDP it answers: a crypto line counts as offered when
// the offer had its tag and suite, DTLS when the offer had a fingerprint.
func mediaFacts(sd, offer *media.Description) policy.MediaFacts {
	if sd == nil {
		return policy.MediaFacts{}
	}
	f := policy.MediaFacts{Present: true}
	for i, st := range sd.Streams {
		sf := policy.StreamFacts{Media: st.Media, Proto: st.Proto, Port: st.Port, DTLS: st.DTLS, RTCPMux: st.RTCPMux}
		var os *media.Stream
		if offer != nil && i < len(offer.Streams) {
			os = &offer.Streams[i]
		}
		if st.DTLS {
			if len(st.Fingerprints) == 0 {
				sf.DTLSProblem = "no usable a=fingerprint"
				if st.FingerprintProblem != "" {
					sf.DTLSProblem += ": " + st.FingerprintProblem
				}
			}
			sf.DTLSOffered = os != nil && os.DTLS
		}
		for _, cl := range st.Crypto {
			cf := policy.CryptoFacts{Tag: cl.Tag, Suite: policy.Suite(cl.Suite), Problem: cl.Problem, UnsafeParams: cl.Unsafe}
			if os != nil {
				for _, oc := range os.Crypto {
					if oc.Tag == cl.Tag && oc.Suite == cl.Suite {
						cf.Offered = true
					}
				}
			}
			sf.Crypto = append(sf.Crypto, cf)
		}
		f.Streams = append(f.Streams, sf)
	}
	return f
}
