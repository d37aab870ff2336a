package media

// Directions parapet writes on a leg (RFC 3264 sections 5.1, 6.1 and 8.4).
// parapet relays, so a stream flows toward a peer only as far as it flows
// from the peer on the other leg.

// flow is a stream's direction as two bits, from the describing side.
type flow struct{ send, recv bool }

// flowOf is the direction a peer gave stream st: its direction attribute
// (none is sendrecv), with RFC 2543's hold, c=0.0.0.0, read as "send me
// nothing" (RFC 3264 section 8.4).
func flowOf(st Stream) flow {
	f := flow{send: true, recv: true}
	switch st.Direction {
	case dirSendOnly:
		f.recv = false
	case dirRecvOnly:
		f.send = false
	case dirInactive:
		f = flow{}
	}
	if st.Addr.IsUnspecified() {
		f.recv = false
	}
	return f
}

// attribute is the direction attribute for f.
func (f flow) attribute() string {
	switch {
	case f.send && f.recv:
		return dirSendRecv
	case f.send:
		return dirSendOnly
	case f.recv:
		return dirRecvOnly
	}
	return dirInactive
}

// written is the direction BuildSDP writes for st when a plan does not
// override it: st's own (media level, else session level), none meaning
// sendrecv.
func written(st Stream) string {
	if st.Direction == "" {
		return dirSendRecv
	}
	return st.Direction
}

// override is the StreamPlan.Direction that makes BuildSDP write f for a
// stream copied from src: "" when it writes f anyway.
func override(f flow, src Stream) string {
	if a := f.attribute(); a != written(src) {
		return a
	}
	return ""
}

// offerDirection is the direction override for parapet's offer of the
// other leg's stream src: src's direction, and sendonly (or inactive) for
// RFC 2543's c=0.0.0.0 hold, which parapet's own c= line would lose.
func offerDirection(src Stream) string {
	return override(flowOf(src), src)
}

// answerDirection is the direction override for parapet's answer to a
// peer that offered stream offered, when the other leg answered src for
// it. parapet sends toward the peer only if the peer receives and the
// other leg sends, and receives from the peer only if the peer sends and
// the other leg receives: so an offer of sendonly gets recvonly or
// inactive, recvonly gets sendonly or inactive, and inactive gets inactive
// (RFC 3264 section 6.1), whatever the other leg answered.
func answerDirection(offered, src Stream) string {
	p, q := flowOf(offered), flowOf(src)
	return override(flow{send: p.recv && q.send, recv: p.send && q.recv}, src)
}
