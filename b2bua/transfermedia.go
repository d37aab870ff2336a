package b2bua

import (
	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
)

// A transfer hands a side of the relay from one leg to another: the same
// ports and streams, new keys and a new peer. Each leg's record says what
// it carried: the replaced leg's media record is frozen as it stood when
// the target answered (its counters, keys and DTLS peer), and the new
// leg counts from there.

// frozenMedia is the media record of a leg a transfer replaced.
type frozenMedia struct {
	media   *compliance.LegMedia
	kx      policy.KeyExchange
	unkeyed bool
}

// handOverMedia freezes x's media record and starts nl's counters at the
// side's counters now, before nl's answer takes x's side of the relay
// (its keys, its DTLS association).
func (c *Call) handOverMedia(x, nl *leg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relay == nil {
		return
	}
	if x.neg != nil && x.neg.Remote() != nil {
		m, kx, unkeyed := c.legMediaRecord(x, c.codecLocked())
		x.frozen = &frozenMedia{media: m, kx: kx, unkeyed: unkeyed}
	}
	nl.mediaBase = c.relay.Counters(x.side)
}

// keepMedia undoes handOverMedia's freeze when the new leg's answer was
// refused: x keeps its side, and its record goes on counting.
func (c *Call) keepMedia(x *leg) {
	c.mu.Lock()
	x.frozen = nil
	c.mu.Unlock()
}

// countersSince is what a side counted after base (counters only grow).
func countersSince(now, base media.Counters) media.Counters {
	return media.Counters{
		PacketsIn: now.PacketsIn - base.PacketsIn, PacketsOut: now.PacketsOut - base.PacketsOut,
		BytesIn: now.BytesIn - base.BytesIn, BytesOut: now.BytesOut - base.BytesOut,
		AuthFailures: now.AuthFailures - base.AuthFailures, Replays: now.Replays - base.Replays,
		WrongSource: now.WrongSource - base.WrongSource, Malformed: now.Malformed - base.Malformed,
		BeforeAnswer: now.BeforeAnswer - base.BeforeAnswer, Unprotected: now.Unprotected - base.Unprotected,
		STUN: now.STUN - base.STUN, DTLS: now.DTLS - base.DTLS,
	}
}
