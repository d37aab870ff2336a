package sim

// The wire tap under a peer's TLS listener: what arrived before decryption,
// and whether any of it was SIP in clear.

import (
	"bytes"
	"net"
	"sync/atomic"
)

// WireStats is what a TLS listener received before decryption.
type WireStats struct {
	Bytes      int64
	TLSRecords int64 // connections whose first byte was a TLS handshake record
	Conns      int64
	// Cleartext is true when the raw bytes contained SIP in clear.
	Cleartext bool
}

type wireTap struct {
	bytes, conns, tlsConns atomic.Int64
	cleartext              atomic.Bool
}

func (w *wireTap) stats() WireStats {
	return WireStats{Bytes: w.bytes.Load(), Conns: w.conns.Load(), TLSRecords: w.tlsConns.Load(), Cleartext: w.cleartext.Load()}
}

type tapListener struct {
	net.Listener
	tap *wireTap
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.tap.conns.Add(1)
	return &tapConn{Conn: c, tap: l.tap}, nil
}

type tapConn struct {
	net.Conn
	tap   *wireTap
	first bool
}

var sipMarkers = [][]byte{[]byte("SIP/2.0"), []byte("INVITE sip"), []byte("a=crypto"), []byte("Call-ID")}

func (c *tapConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		if !c.first {
			c.first = true
			if b[0] == 0x16 { // TLS handshake record (RFC 8446 section 5.1)
				c.tap.tlsConns.Add(1)
			}
		}
		c.tap.bytes.Add(int64(n))
		for _, m := range sipMarkers {
			if bytes.Contains(b[:n], m) {
				c.tap.cleartext.Store(true)
			}
		}
	}
	return n, err
}
