package policy

import "fmt"

// Control is a HIPAA control a decision or finding bears on, named by its
// section of 45 CFR.
type Control string

// The controls parapet maps its evidence to.
const (
	ControlAccess           Control = "164.312(a)(1)"     // access control
	ControlAudit            Control = "164.312(b)"        // audit controls
	ControlIntegrity        Control = "164.312(c)(1)"     // integrity of ePHI (the log's chain)
	ControlAuthentication   Control = "164.312(d)"        // person or entity authentication
	ControlTransmission     Control = "164.312(e)(1)"     // transmission security
	ControlTransitIntegrity Control = "164.312(e)(2)(i)"  // integrity controls in transit
	ControlEncryption       Control = "164.312(e)(2)(ii)" // encryption in transit
	ControlDeidentification Control = "164.514"           // re-identification of the metadata parapet keeps
)

// Controls lists every control in report order.
var Controls = []Control{
	ControlAccess, ControlAudit, ControlIntegrity, ControlAuthentication,
	ControlTransmission, ControlTransitIntegrity, ControlEncryption, ControlDeidentification,
}

// Title is the control's name as the regulation gives it.
func (c Control) Title() string {
	switch c {
	case ControlAccess:
		return "Access control"
	case ControlAudit:
		return "Audit controls"
	case ControlIntegrity:
		return "Integrity"
	case ControlAuthentication:
		return "Person or entity authentication"
	case ControlTransmission:
		return "Transmission security"
	case ControlTransitIntegrity:
		return "Integrity controls (transmission)"
	case ControlEncryption:
		return "Encryption (transmission)"
	case ControlDeidentification:
		return "De-identification / re-identification"
	}
	return string(c)
}

// FindingStatus is how a leg stands against a control.
type FindingStatus string

const (
	// StatusSatisfied means the leg carried the protection the control asks for.
	StatusSatisfied FindingStatus = "satisfied"
	// StatusViolated means the zone required the protection and the leg ran
	// without it (possible only in observe mode) or the protection failed.
	StatusViolated FindingStatus = "violated"
	// StatusNotRequired means the leg ran without the protection and its
	// zone's policy does not require it (an internal network, say).
	StatusNotRequired FindingStatus = "not_required"
	// StatusNotApplicable means nothing was sent on the leg: parapet never
	// got a connection to the peer (refused, unreachable, or a TLS handshake
	// that failed, which has its own connection event).
	StatusNotApplicable FindingStatus = "not_applicable"
)

// Finding ties one control to what was observed on one leg.
type Finding struct {
	Control Control       `json:"control"`
	Status  FindingStatus `json:"status"`
	Detail  string        `json:"detail"`
}

// LegOutcome is what a leg actually ran with, for the findings written into
// the record when the call ends.
type LegOutcome struct {
	Signaling   SignalingFacts
	SRTP        bool
	Suite       Suite
	KeyExchange KeyExchange
	// AuthFailures and Replays are SRTP/SRTCP packets dropped on this leg;
	// Unprotected are clear RTP/RTCP packets dropped on it.
	AuthFailures uint64
	Replays      uint64
	Unprotected  uint64
	// SourceAdmitted is false when the request came from outside the zone's
	// peers and the zone only observed.
	SourceAdmitted bool
	// Originated is true for the leg parapet dialled (the B leg).
	Originated bool
	// MediaFlowed is false when the call never carried media (rejected,
	// cancelled or failed before an answer): media is then not judged.
	MediaFlowed bool
	// NotConnected is true for a leg parapet dialled over TCP or TLS and
	// never got a connection on: nothing was sent, nothing is judged.
	NotConnected bool
}

// LegFindings judges a leg's outcome against the transmission-security and
// authentication controls. It is the per-leg evidence an auditor reads.
func LegFindings(z *Zone, o LegOutcome) []Finding {
	tlsOK := o.Signaling.Transport == TransportTLS && o.Signaling.TLS != nil &&
		o.Signaling.TLS.Version >= MinTLSFloor
	var out []Finding

	// (a)(1): was the request admitted by the zone's access list? Only the
	// leg that sent us a request is judged; the leg we dialled is ours.
	if !o.Originated {
		if o.SourceAdmitted {
			out = append(out, Finding{ControlAccess, StatusSatisfied,
				fmt.Sprintf("source %s within zone %q peers", o.Signaling.Source.Addr(), z.Name)})
		} else {
			out = append(out, Finding{ControlAccess, StatusViolated,
				fmt.Sprintf("source %s outside zone %q peers (observe mode)", o.Signaling.Source.Addr(), z.Name)})
		}
	}

	if o.NotConnected {
		d := fmt.Sprintf("no %s connection to the peer: nothing was sent", o.Signaling.Transport)
		return append(out, Finding{ControlAuthentication, StatusNotApplicable, d},
			Finding{ControlTransmission, StatusNotApplicable, d}, Finding{ControlEncryption, StatusNotApplicable, d})
	}

	// (d): did we authenticate the peer's certificate?
	switch {
	case tlsOK && o.Signaling.TLS.PeerCert != nil && o.Signaling.TLS.PeerCert.Verified:
		out = append(out, Finding{ControlAuthentication, StatusSatisfied,
			fmt.Sprintf("peer certificate %q verified", o.Signaling.TLS.PeerCert.Subject)})
	case tlsOK && o.Signaling.TLS.PeerCert != nil:
		st := StatusNotRequired
		if z.VerifyPeer {
			st = StatusViolated
		}
		out = append(out, Finding{ControlAuthentication, st,
			fmt.Sprintf("peer certificate %q not verified: %s", o.Signaling.TLS.PeerCert.Subject, o.Signaling.TLS.PeerCert.VerifyError)})
	case tlsOK:
		st := StatusNotRequired
		if z.ClientAuth == ClientAuthRequire || (o.Originated && z.VerifyPeer) {
			st = StatusViolated
		}
		out = append(out, Finding{ControlAuthentication, st, "peer presented no certificate"})
	default:
		st := StatusNotRequired
		if z.Signaling == RequirementRequire {
			st = StatusViolated
		}
		out = append(out, Finding{ControlAuthentication, st, "no TLS: peer identified by source address only"})
	}

	// (e)(1) and (e)(2)(ii): signaling and media both protected?
	sig := fmt.Sprintf("SIP over %s", o.Signaling.Transport)
	if tlsOK {
		sig = fmt.Sprintf("SIP over %s %s", o.Signaling.TLS.Version, o.Signaling.TLS.CipherSuite)
	}
	if !o.MediaFlowed {
		st := StatusNotRequired
		switch {
		case tlsOK:
			st = StatusSatisfied
		case z.Signaling == RequirementRequire:
			st = StatusViolated
		}
		d := sig + "; no media flowed"
		return append(out, Finding{ControlTransmission, st, d}, Finding{ControlEncryption, st, d})
	}
	med := "media plain RTP"
	if o.SRTP {
		med = fmt.Sprintf("media SRTP %s (%s)", o.Suite, o.KeyExchange)
	}
	detail := sig + ", " + med
	switch {
	case tlsOK && o.SRTP:
		out = append(out,
			Finding{ControlTransmission, StatusSatisfied, detail},
			Finding{ControlEncryption, StatusSatisfied, detail})
	default:
		st := StatusNotRequired
		if (!tlsOK && z.Signaling == RequirementRequire) || (!o.SRTP && z.SRTP == RequirementRequire) {
			st = StatusViolated
		}
		out = append(out,
			Finding{ControlTransmission, st, detail},
			Finding{ControlEncryption, st, detail})
	}

	// (e)(2)(i): every media packet authenticated, and were any refused?
	if o.SRTP {
		d := fmt.Sprintf("every packet authenticated with %s", o.Suite)
		if o.AuthFailures > 0 || o.Replays > 0 || o.Unprotected > 0 {
			d += fmt.Sprintf("; dropped: %d failing authentication, %d replayed, %d unprotected",
				o.AuthFailures, o.Replays, o.Unprotected)
		}
		out = append(out, Finding{ControlTransitIntegrity, StatusSatisfied, d})
	} else {
		st := StatusNotRequired
		if z.SRTP == RequirementRequire {
			st = StatusViolated
		}
		out = append(out, Finding{ControlTransitIntegrity, st, "plain RTP: media not integrity-protected"})
	}
	return out
}
