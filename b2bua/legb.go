package b2bua

import (
	"crypto/tls"
	"net"
	"net/netip"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
)

// resetB forgets an attempt on leg B that the callee refused, so that
// ringB can make another: a new dialog, a new offer.
func (c *Call) resetB() {
	b := c.b
	c.env.reg.forgetLeg(b)
	if b.uac != nil {
		b.uac.Close()
	}
	b.mu.Lock()
	b.remoteTag, b.remoteSeq, b.seqKnown = "", 0, false
	b.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	b.uac, b.key, b.remote, b.local, b.conn, b.callID, b.userAgent = nil, dialogKey{}, "", "", nil, "", ""
	b.early = earlyDialog{}
	b.sig = policy.SignalingFacts{Transport: b.transport}
	c.toFlow(b.flow)
	c.negLocked(b).Reset()
}

// noteB records where B's responses come from and, over TLS, the
// handshake that carried them.
func (c *Call) noteB(res *sip.Response) {
	if res == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noteDeviceLocked(c.b, res)
	if c.b.remote == "" {
		c.notePeerLocked(c.b, res)
	}
}

// noteDeviceLocked takes the callee's device, on leg l, from res: the
// Server header of its responses (100 Trying may come from a proxy on the
// way); some stacks put a User-Agent header there instead. Caller holds
// c.mu.
func (c *Call) noteDeviceLocked(l *leg, res *sip.Response) {
	if res.StatusCode == 100 {
		return
	}
	h := res.GetHeader("Server")
	if h == nil {
		h = res.GetHeader("User-Agent")
	}
	if h != nil {
		l.userAgent = recordText(h.Value(), nil)
	}
}

// notePeerLocked takes, on leg l, where res came from and over which
// connection (noteConnLocked). Caller holds c.mu.
func (c *Call) notePeerLocked(l *leg, res *sip.Response) {
	l.remote = res.Source()
	if ap, err := netip.ParseAddrPort(res.Source()); err == nil {
		l.sig.Source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	c.noteConnLocked(l, strings.ToLower(res.Transport()), res.Source())
}

// noteConnLocked takes, on leg b (B, or a transfer's target), the local
// address and, over TLS, the handshake of the connection to its peer at
// addr, if it is still open and not yet noted. For B it is called as soon
// as the INVITE was written (a callee may answer and close
// the connection before its response is looked at) and again for the
// first response. Caller holds c.mu.
func (c *Call) noteConnLocked(b *leg, network, addr string) {
	if b.local != "" && (b.transport != policy.TransportTLS || b.sig.TLS != nil) {
		return
	}
	conn := b.zone.pooled(network, addr)
	if conn == nil {
		return
	}
	if b.conn == nil && b.transport != policy.TransportUDP {
		b.conn = conn
	}
	if la := conn.LocalAddr(); la != nil {
		b.local = la.String()
	}
	if b.transport != policy.TransportTLS {
		return
	}
	if tc, ok := conn.(*sip.TCPConnection); ok {
		if tlsc, ok := tc.Conn.(*tls.Conn); ok {
			st := tlsc.ConnectionState()
			b.sig.TLS = tlsFacts(&st, b.pol.VerifyPeer)
		}
	}
}

// bConnLost reports whether leg B's TCP or TLS connection, toward dest, is
// no longer in sipgo's pool: closed, by the peer or on an error.
func (c *Call) bConnLost(network, dest string) bool {
	c.mu.Lock()
	known := c.b.conn
	c.mu.Unlock()
	z := c.b.zone
	if known == nil {
		// Never found: gone already if dest is an address; a host name's
		// connection is pooled under the address it resolved to, unknown
		// here until a response names it.
		ap, err := netip.ParseAddrPort(dest)
		return err == nil && z.pooled(network, ap.String()) == nil
	}
	ra, ok := known.(interface{ RemoteAddr() net.Addr })
	return ok && z.pooled(network, ra.RemoteAddr().String()) != known
}

// pooled returns the connection sipgo's pool holds for addr, or nil. It
// gives back the reference GetConnection takes: parapet only looks.
func (z *zone) pooled(network, addr string) sip.Connection {
	conn, err := z.ua.TransportLayer().GetConnection(network, addr)
	if err != nil || conn == nil {
		return nil
	}
	conn.Ref(-1)
	return conn
}
