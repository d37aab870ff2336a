// Package audit judges captured traffic the way parapet judges the calls it
// carries: it reads a pcap, a pcapng or a plain-text SIP trace, rebuilds
// what it can see (SIP dialogs in clear, TLS handshakes, RTP and SRTP
// flows), judges each leg with policy.Evaluate and policy.LegFindings
// against the zone it falls in, and emits compliance records that
// compliance/report renders like parapet's own logs.
//
// # What is read
//
// Packets: Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback
// frames carrying IPv4 or IPv6, then UDP or TCP (gopacket's pcapgo and
// layers: pure Go, no libpcap). IP fragments are counted, not reassembled.
// TCP is reassembled per direction in sequence order, holding a few early
// segments; a gap that never fills is skipped and noted.
//
// SIP in clear, over UDP and TCP (framed by Content-Length): requests and
// responses of INVITE dialogs, compact header forms included. SDP bodies
// go through media.ParseSDP, parapet's own parser. The SIP parser here is
// small and bounded (16 KiB of headers, 64 KiB of body) and only reads the
// headers audit needs.
//
// TLS on any port, detected by its first record: the ClientHello (highest
// version offered, from supported_versions when present, SNI, ALPN), the
// ServerHello (version chosen, cipher suite), the server's Certificate
// message when it is in clear (TLS 1.2 and earlier), and fatal alerts sent
// before the handshake is protected. Nothing encrypted is read.
//
// Text traces (sngrep, ngrep -W byline, a proxy's siptrace, a softphone
// log): messages start at a SIP start line; lines between messages may
// carry a timestamp (2026-12-07 10:11:12.345 or with slashes) and
// "1.2.3.4:5060 -> 5.6.7.8:5060" addresses (ngrep's leading U or T gives
// the transport). Only signaling and SDP are judged; there are no packets.
//
// # How legs are judged
//
// A dialog (a Call-ID with an INVITE) has one leg per hop its INVITE took:
// the first hop is leg "a" (Remote: the INVITE's sender, UserAgent its
// User-Agent), later hops (a proxy's onward INVITE with the same Call-ID)
// are legs "b" (Remote: the hop's receiver, UserAgent the Server header of
// its responses, else their User-Agent), as for legs parapet dials. Each leg
// is judged in the first zone that lists either end among its Listen
// addresses, else the first whose Peers hold the INVITE's sender, else
// DefaultZone. The offer (the INVITE's SDP, or the 2xx's on a delayed
// offer) is judged at StageOffer, the answer at StageAnswer; the findings
// come from policy.LegFindings with what the leg actually ran: SIP over
// UDP or TCP, SRTP when the answer settled an SRTP key exchange. A zone in
// enforce mode thus records "rejected" decisions for calls that in fact
// went through: the decision says what parapet would have done.
//
// A TLS connection that may carry SIP (port 5061, a zone listener, or no
// ALPN or port naming another protocol) gives a record of its own. A
// refused handshake (a fatal alert, or no ServerHello) is a connection
// record, event tls_refused, with the client's highest offered version and
// the StageHandshake decision. A completed one is a call record
// "capture-tls-N" with one TLS leg, disposition unobserved: its dialog is
// encrypted. Its leg has no Media (no SDP can be tied to it); media is
// judged from the flows between the same two hosts that started while the
// connection was open, classified by their packets: any plain one and the
// leg's (e)(1) and (e)(2)(ii) findings say violated; all SRTP, satisfied;
// none classified, judged on signaling alone, and the finding's detail
// says so. The server's certificate, when visible, is the leg's peer
// certificate, never marked verified (a capture holds no trust anchors).
//
// # How flows are classified
//
// A UDP flow (one direction of a 5-tuple) is media when an SDP of a dialog
// named its destination or source, or when five packets in a row look like
// RTP (version 2, not an RTCP type, same SSRC, sequence numbers rising by
// less than 100). Its class comes from the SDP when one named it (an SAVP
// profile is SRTP), else from its packets, whose first 200 payloads (32 KiB
// at most) are sampled: see flowSample.packetClass for the rules, which use
// repeated payloads, payload byte entropy, G.711 frame sizes plus an
// authentication tag, and how varied the first payload byte is. Report.Flow
// carries both: Class/By, and PacketClass, what the packets alone say.
//
// # Limits
//
// Memory is per dialog, connection and flow, each bounded (MaxDialogs,
// MaxConnections, MaxFlows, MaxSampledFlows); flows idle for a minute and
// connections idle for five are let go of as the capture goes on. A
// truncated capture gives the records of what was read and an error
// wrapping ErrTruncated.
package audit
