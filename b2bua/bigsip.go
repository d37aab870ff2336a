package b2bua

// Large SIP messages over UDP (RFC 3261 section 18.1.1). A request within
// 200 bytes of the path MTU, or over 1,300 bytes when the MTU is unknown
// (parapet never knows it), MUST be sent over a congestion-controlled
// transport, TCP, when the target allows it, the top Via saying so;
// otherwise it is sent over UDP anyway and IP fragments it. Responses go
// back the way their request came (section 18.2.2), whatever their size.
//
// parapet applies this to the requests it originates on leg B toward a UDP
// target: the INVITE (dialB decides, before the leg is booked: its
// transport is then fixed for the dialog, which sipgo keeps for every
// request inside it) and, on a dialog that stayed on UDP, each request
// inside the dialog (legSender). TCP is tried only when the zone listens on
// TCP, so that parapet's Contact can name a TCP listener for the callee's
// own requests, and never toward a user registered over UDP (registered.go):
// its flow is the only way to it.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/policy"
)

const (
	// udpRequestLimit is the size above which a request toward a UDP
	// target tries TCP first (RFC 3261 section 18.1.1, the path MTU
	// unknown).
	udpRequestLimit = 1300
	// maxUDPPayload is the largest UDP datagram IPv4 can carry (65,535
	// less the IP and UDP headers): the kernel refuses larger ones.
	maxUDPPayload = 65507
	// tcpTry bounds the TCP connection attempt before a large request
	// falls back to UDP: a target that drops SYNs delays it no longer.
	tcpTry = 2 * time.Second
)

// What sipgo adds to a request as it sends it, counted before it does:
// a Via (and its sent-by, filled in from the connection), and, for an
// INVITE a digest challenge makes sipgo send again, its Authorization.
// The widest each can be, so that the estimate errs toward TCP.
const (
	sentByRoom = "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
	viaRoom    = "Via: SIP/2.0/UDP " + sentByRoom + ";branch=z9hG4bK.0123456789abcdef;rport\r\n"
	authRoom   = 400
)

func init() {
	// sipgo v1.7 refuses to write any UDP message larger than
	// UDPMTUSize-200 (1,300) bytes, requests and responses alike
	// (ErrUDPMTUCongestion): they were never sent. parapet makes the
	// choice itself: a large request tries TCP first (above), and what
	// must go over UDP (responses; requests to a target without TCP) is
	// sent anyway, as section 18.1.1 has it. The limit left is the
	// datagram's own, whose refusal (EMSGSIZE) is a send failure like any
	// other and recorded as one. Reading is unchanged: sipgo reads a
	// datagram into sip.TransportBufferReadSize (32 KiB), per listener
	// and per TCP connection, which parapet keeps rather than double.
	// Set once, before any goroutine of sipgo's reads it.
	sip.UDPMTUSize = maxUDPPayload + 200
}

// wireSize estimates how many bytes req takes on the wire once sipgo has
// added its Via, or filled in the Via's sent-by: at most the width of the
// widest sent-by above what it will be.
func wireSize(req *sip.Request) int {
	n := len(req.String())
	switch via := req.Via(); {
	case via == nil:
		n += len(viaRoom)
	case via.Host == "" || via.Port == 0:
		n += len(sentByRoom)
	}
	return n
}

// tcpPossible reports whether a request on a leg of zone z toward a UDP
// target may move to TCP: the zone listens on TCP, where the callee's own
// requests can then reach parapet.
func (z *zone) tcpPossible() bool {
	_, ok := z.bound[policy.TransportTCP]
	return ok
}

// dialTCP opens sipgo's TCP connection to req's destination (or finds it
// open), within tcpTry, and leaves it in sipgo's pool for req to be sent
// over. req itself is not changed.
func (z *zone) dialTCP(ctx context.Context, req *sip.Request) error {
	probe := req.Clone()
	probe.SetTransport("TCP")
	probe.Laddr = sip.Addr{}
	if probe.Via() == nil {
		probe.PrependHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TCP",
			Params: sip.NewParams()})
	}
	ctx, cancel := context.WithTimeout(ctx, tcpTry)
	defer cancel()
	conn, err := z.ua.TransportLayer().ClientRequestConnection(ctx, probe)
	if err != nil {
		return fmt.Errorf("tcp to %s: %w", req.Destination(), err)
	}
	_, _ = conn.TryClose() // the pool keeps it (idle) for req
	return nil
}

// toTCP moves req, built for UDP, to TCP: its transport and its top Via
// (when it has one yet); its local address is the TCP connection's, not
// the UDP listener's. Its Contact is the caller's to change.
func toTCP(req *sip.Request) {
	req.SetTransport("TCP")
	req.Laddr = sip.Addr{}
	if via := req.Via(); via != nil {
		via.Transport = "TCP"
	}
}

// inviteTransport chooses the transport of B's INVITE, req, before it is
// sent: TCP when the target is on UDP, the INVITE is over udpRequestLimit
// and a TCP connection to the target can be made (req is then moved to
// TCP, but for its Contact); else the target's. tcpRefused says the TCP
// connection was tried and failed: requests inside the dialog need not
// try it again. A call to a user registered over UDP stays on UDP: the
// user can be reached only over its registration's flow (RFC 5626), a NAT
// binding that takes no TCP connection.
func (c *Call) inviteTransport(req *sip.Request) (t policy.Transport, tcpRefused bool) {
	t, z := c.target.Transport, c.b.zone
	if t != policy.TransportUDP || !z.tcpPossible() || c.b.flow != nil {
		return t, false
	}
	size := wireSize(req)
	if c.route.Username != "" || c.route.Password != "" {
		size += authRoom
	}
	if size <= udpRequestLimit {
		return t, false
	}
	ctx := c.a.uas.Context()
	if err := z.dialTCP(ctx, req); err != nil {
		if ctx.Err() == nil { // else the caller is gone: nothing is sent
			c.log.Info("large INVITE sent over UDP: the callee side refused TCP", "bytes", size, "error", sendError(err))
		}
		return t, true
	}
	toTCP(req)
	c.log.Info("large INVITE sent over TCP", "bytes", size)
	return policy.TransportTCP, false
}

// clientB is the sipgo client leg B's dialog sends its requests with: the
// zone's, or, on a dialog over UDP that may move to TCP, a copy of it
// whose requests inside the dialog go through a legSender; on a
// registration's flow, one whose requests all go over the flow
// (flowSender).
func (c *Call) clientB(t policy.Transport, tcpRefused bool) *sipgo.Client {
	z := c.b.zone
	// Without a UDP listener the Contact has no port, which sipgo fills in
	// only when it sends the INVITE itself, not through a TxRequester.
	_, udp := z.bound[policy.TransportUDP]
	if fl := c.b.flow; fl != nil {
		cli := *z.cli
		cli.TxRequester = &flowSender{z: z, fl: fl}
		return &cli
	}
	if c.target.Transport != policy.TransportUDP || t != policy.TransportUDP || !z.tcpPossible() || !udp {
		return z.cli
	}
	cli := *z.cli
	s := &legSender{z: z, log: c.log}
	s.tcpRefused.Store(tcpRefused)
	cli.TxRequester = s
	return &cli
}

// legSender sends the requests of one leg's dialog over UDP, except that
// one inside the dialog over udpRequestLimit tries TCP to the same
// destination first (RFC 3261 section 18.1.1). It is the leg's sipgo
// client's TxRequester: sipgo hands it each request once built, Via
// included, in place of its transaction layer (ACKs in place of its
// transport layer).
type legSender struct {
	z   *zone
	log *slog.Logger
	// tcpRefused: a TCP connection to the callee side failed; large
	// requests go over UDP without trying again.
	tcpRefused atomic.Bool
}

// Request sends req as sipgo would, moving it to TCP first when it is a
// large request inside the dialog and TCP can be had.
func (s *legSender) Request(ctx context.Context, req *sip.Request) (sip.ClientTransaction, error) {
	if s.wantsTCP(req) {
		if err := s.z.dialTCP(ctx, req); err != nil {
			s.tcpRefused.Store(ctx.Err() == nil) // else the request was given up, not refused
			s.log.Info("large request sent over UDP: the other side refused TCP", "method", string(req.Method),
				"error", sendError(err))
		} else {
			toTCP(req)
			if req.Contact() != nil {
				ct := s.z.contact(policy.TransportTCP, false)
				req.RemoveHeader("Contact")
				req.AppendHeader(&ct)
			}
		}
	}
	if req.IsAck() {
		return nil, s.z.ua.TransportLayer().WriteMsg(req)
	}
	tx, err := s.z.ua.TransactionLayer().Request(ctx, req)
	if err != nil {
		return nil, err
	}
	return tx, nil
}

// wantsTCP reports whether req should try TCP: a request inside the
// dialog (its To has a tag; the INVITE's transport was chosen before it
// was sent) other than CANCEL (which follows its INVITE), on UDP, larger
// than udpRequestLimit, toward a side that has not refused TCP.
func (s *legSender) wantsTCP(req *sip.Request) bool {
	to := req.To()
	if to == nil || !to.Params.Has("tag") || req.IsCancel() || req.Transport() != "UDP" || s.tcpRefused.Load() {
		return false
	}
	return wireSize(req) > udpRequestLimit
}

// sendError says why a message could not be sent, in a few stable words
// fit for a record: the system call's error ("sendto: message too long"),
// a closed connection, else err as it reads.
func sendError(err error) string {
	var se *os.SyscallError
	switch {
	case errors.As(err, &se):
		return se.Error()
	case errors.Is(err, net.ErrClosed):
		return "the connection is closed"
	}
	return err.Error()
}
