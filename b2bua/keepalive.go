package b2bua

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"net"
	"net/netip"
)

// Keep-alives of users registered over UDP (RFC 5626 section 4.4.1). A
// phone behind a NAT keeps the NAT's binding open, so that calls can reach
// it, by sending something to parapet now and then: a STUN Binding request
// on the SIP port (RFC 5626's way, RFC 5389), which baresip and other
// outbound stacks send, or a CRLFCRLF ping (the connection-oriented way,
// which many phones send over UDP too). parapet answers either from an
// address with a live UDP binding (the request tells whether the flow is
// still up, RFC 5626 section 4.4.2): a Binding success response naming the
// address the request came from, or a CRLF pong. From anyone else a
// keep-alive is dropped silently, as before: parapet answers no STUN for
// strangers (it is no STUN server) and reflects nothing toward them.

// stunMagic is STUN's magic cookie (RFC 5389 section 6).
const stunMagic = 0x2112A442

const (
	stunBindingRequest  = 0x0001
	stunBindingSuccess  = 0x0101
	stunXorMappedAddr   = 0x0020
	stunFingerprint     = 0x8028
	stunFingerprintXor  = 0x5354554e
	stunHeaderLen       = 20
	stunFingerprintSize = 8
)

// isSTUNBinding reports whether a datagram is a STUN Binding request: the
// first two bits zero, the magic cookie, a length that fits (RFC 5389
// section 6; how RFC 5626 section 8 tells STUN from SIP on one port).
func isSTUNBinding(data []byte) bool {
	if len(data) < stunHeaderLen || data[0]&0xC0 != 0 {
		return false
	}
	return binary.BigEndian.Uint16(data[0:2]) == stunBindingRequest &&
		int(binary.BigEndian.Uint16(data[2:4])) == len(data)-stunHeaderLen &&
		binary.BigEndian.Uint32(data[4:8]) == stunMagic
}

// stunBindingResponse is the Binding success response to req (a Binding
// request, isSTUNBinding) from src: XOR-MAPPED-ADDRESS naming src, and a
// FINGERPRINT, as STUN multiplexed with another protocol has (RFC 5389
// sections 15.2 and 15.5).
func stunBindingResponse(req []byte, src netip.AddrPort) []byte {
	addr := src.Addr().Unmap()
	ip := addr.AsSlice()
	family := byte(0x01)
	if addr.Is6() {
		family = 0x02
	}
	var out bytes.Buffer
	out.Grow(stunHeaderLen + 4 + 4 + len(ip) + stunFingerprintSize)
	attrLen := 4 + len(ip)
	hdr := make([]byte, stunHeaderLen)
	binary.BigEndian.PutUint16(hdr[0:2], stunBindingSuccess)
	binary.BigEndian.PutUint16(hdr[2:4], uint16(4+attrLen+stunFingerprintSize))
	copy(hdr[4:20], req[4:20]) // magic cookie and transaction ID
	out.Write(hdr)
	attr := make([]byte, 4+attrLen)
	binary.BigEndian.PutUint16(attr[0:2], stunXorMappedAddr)
	binary.BigEndian.PutUint16(attr[2:4], uint16(attrLen))
	attr[5] = family
	binary.BigEndian.PutUint16(attr[6:8], src.Port()^uint16(stunMagic>>16))
	for i := range ip { // the cookie, then the transaction ID (RFC 5389 section 15.2)
		ip[i] ^= hdr[4+i]
	}
	copy(attr[8:], ip)
	out.Write(attr)
	fp := make([]byte, stunFingerprintSize)
	binary.BigEndian.PutUint16(fp[0:2], stunFingerprint)
	binary.BigEndian.PutUint16(fp[2:4], 4)
	binary.BigEndian.PutUint32(fp[4:8], crc32.ChecksumIEEE(out.Bytes())^stunFingerprintXor)
	out.Write(fp)
	return out.Bytes()
}

// flowKeepAlive answers a keep-alive, data, that came to zone z's UDP
// socket at local from src, when src has a live UDP binding. It reports
// whether data was a keep-alive (answered or not): nothing else is to be
// done with it.
func (s *Server) flowKeepAlive(z *zone, local net.Addr, src netip.AddrPort, data []byte) bool {
	stun := isSTUNBinding(data)
	if !stun && !isKeepAlive(data) {
		return false
	}
	if !s.binds.udpFlow(z.name, src.String()) {
		return true
	}
	pong := []byte("\r\n")
	if stun {
		pong = stunBindingResponse(data, src)
	} else if !bytes.Equal(data, []byte("\r\n\r\n")) {
		return true // a lone CRLF is a keep-alive that asks for nothing
	}
	if c := z.udp[local.String()]; c != nil {
		if _, err := c.WriteToUDPAddrPort(pong, src); err != nil {
			s.log.Debug("keep-alive answer not sent", "zone", z.name, "remote", src.String(), "error", err)
		}
	}
	return true
}
