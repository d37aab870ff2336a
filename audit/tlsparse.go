package audit

import (
	"errors"
	"fmt"

	"github.com/parapet-sbc/parapet/policy"
	"golang.org/x/crypto/cryptobyte"
)

// TLS record content types (RFC 8446 section 5.1).
const (
	recChangeCipherSpec = 20
	recAlert            = 21
	recHandshake        = 22
	recApplicationData  = 23
)

// TLS handshake message types.
const (
	hsClientHello = 1
	hsServerHello = 2
	hsCertificate = 11
)

// Bounds of the TLS reader.
const (
	// maxRecord is the largest record accepted: 2^14 plus the expansion
	// RFC 5246 allows a protected record.
	maxRecord = 1<<14 + 2048
	// maxHandshakeMsg bounds one handshake message (a certificate chain);
	// larger ones are skipped, not buffered.
	maxHandshakeMsg = 128 << 10
)

// Extension numbers read from the hellos.
const (
	extServerName        = 0
	extALPN              = 16
	extSupportedVersions = 43
)

// clientHello is what audit reads of a ClientHello.
type clientHello struct {
	// MaxVersion is the highest version offered: of supported_versions when
	// present (GREASE values skipped), else legacy_version.
	MaxVersion policy.TLSVersion
	SNI        string
	ALPN       []string
}

// serverHello is what audit reads of a ServerHello.
type serverHello struct {
	// Version is the version chosen: supported_versions when present, else
	// legacy_version.
	Version policy.TLSVersion
	Cipher  uint16
}

func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

// parseClientHello reads a ClientHello body (after the handshake header).
func parseClientHello(body []byte) (*clientHello, error) {
	s := cryptobyte.String(body)
	var legacy uint16
	var random []byte
	var sessionID, suites, compression cryptobyte.String
	if !s.ReadUint16(&legacy) || !s.ReadBytes(&random, 32) || !s.ReadUint8LengthPrefixed(&sessionID) ||
		!s.ReadUint16LengthPrefixed(&suites) || !s.ReadUint8LengthPrefixed(&compression) {
		return nil, errors.New("malformed ClientHello")
	}
	ch := &clientHello{MaxVersion: policy.TLSVersion(legacy)}
	if s.Empty() {
		return ch, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, errors.New("malformed ClientHello extensions")
	}
	var versions []uint16
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errors.New("malformed ClientHello extension")
		}
		switch typ {
		case extServerName:
			var list cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) {
				return nil, errors.New("malformed server_name extension")
			}
			for !list.Empty() {
				var nameType uint8
				var name cryptobyte.String
				if !list.ReadUint8(&nameType) || !list.ReadUint16LengthPrefixed(&name) {
					return nil, errors.New("malformed server_name entry")
				}
				if nameType == 0 && ch.SNI == "" {
					ch.SNI = printable(string(name), 255)
				}
			}
		case extALPN:
			var list cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) {
				return nil, errors.New("malformed ALPN extension")
			}
			for !list.Empty() && len(ch.ALPN) < 16 {
				var p cryptobyte.String
				if !list.ReadUint8LengthPrefixed(&p) {
					return nil, errors.New("malformed ALPN protocol")
				}
				ch.ALPN = append(ch.ALPN, printable(string(p), 64))
			}
		case extSupportedVersions:
			var list cryptobyte.String
			if !data.ReadUint8LengthPrefixed(&list) {
				return nil, errors.New("malformed supported_versions extension")
			}
			for !list.Empty() {
				var v uint16
				if !list.ReadUint16(&v) {
					return nil, errors.New("malformed supported_versions entry")
				}
				if !isGREASE(v) {
					versions = append(versions, v)
				}
			}
		}
	}
	if len(versions) > 0 {
		ch.MaxVersion = 0
		for _, v := range versions {
			ch.MaxVersion = max(ch.MaxVersion, policy.TLSVersion(v))
		}
	}
	return ch, nil
}

// parseServerHello reads a ServerHello body.
func parseServerHello(body []byte) (*serverHello, error) {
	s := cryptobyte.String(body)
	var legacy, cipher uint16
	var random []byte
	var sessionID cryptobyte.String
	var compression uint8
	if !s.ReadUint16(&legacy) || !s.ReadBytes(&random, 32) || !s.ReadUint8LengthPrefixed(&sessionID) ||
		!s.ReadUint16(&cipher) || !s.ReadUint8(&compression) {
		return nil, errors.New("malformed ServerHello")
	}
	sh := &serverHello{Version: policy.TLSVersion(legacy), Cipher: cipher}
	if s.Empty() {
		return sh, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, errors.New("malformed ServerHello extensions")
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errors.New("malformed ServerHello extension")
		}
		if typ == extSupportedVersions {
			var v uint16
			if !data.ReadUint16(&v) {
				return nil, errors.New("malformed supported_versions in ServerHello")
			}
			sh.Version = policy.TLSVersion(v)
		}
	}
	return sh, nil
}

// parseCertificates reads a TLS 1.2 (or earlier) Certificate body: the DER
// certificates, leaf first. At most maxCerts are returned.
func parseCertificates(body []byte) ([][]byte, error) {
	const maxCerts = 8
	s := cryptobyte.String(body)
	var list cryptobyte.String
	if !s.ReadUint24LengthPrefixed(&list) || !s.Empty() {
		return nil, errors.New("malformed Certificate message")
	}
	var out [][]byte
	for !list.Empty() {
		var c cryptobyte.String
		if !list.ReadUint24LengthPrefixed(&c) {
			return nil, errors.New("malformed certificate entry")
		}
		if len(out) < maxCerts {
			out = append(out, []byte(c))
		}
	}
	return out, nil
}

// tlsEvents receives what a tlsHalf reads.
type tlsEvents interface {
	handshakeMsg(fromClient bool, typ uint8, body []byte)
	alert(fromClient bool, level, desc uint8)
	protected(fromClient bool) // a ChangeCipherSpec or application data record
}

// tlsHalf reads one direction of a TLS connection: records, and the
// handshake messages in clear. It stops reading handshake messages once the
// direction is protected (ChangeCipherSpec or application data seen, or a
// TLS 1.3 ServerHello sent).
type tlsHalf struct {
	fromClient bool
	buf        []byte // bytes of an incomplete record
	hs         []byte // handshake bytes of an incomplete message
	skip       int    // handshake bytes still to skip (an oversized message)
	protected  bool
	broken     error
}

// feed reads data, calling ev for what it finds. After an error (not TLS,
// or a malformed record) the half stays broken and ignores further data.
func (h *tlsHalf) feed(data []byte, ev tlsEvents) {
	if h.broken != nil {
		return
	}
	h.buf = append(h.buf, data...)
	for len(h.buf) >= 5 {
		typ, n := h.buf[0], int(h.buf[3])<<8|int(h.buf[4])
		if typ < recChangeCipherSpec || typ > recApplicationData || h.buf[1] != 3 || n > maxRecord {
			h.broken = fmt.Errorf("not a TLS record (type %d, version %d.%d, length %d)", typ, h.buf[1], h.buf[2], n)
			h.buf = nil
			return
		}
		if len(h.buf) < 5+n {
			break
		}
		h.record(typ, h.buf[5:5+n], ev)
		h.buf = h.buf[5+n:]
	}
	// Keep the buffer's memory bounded by one record; copy down so a long
	// stream does not pin an ever-growing array.
	if cap(h.buf) > 2*maxRecord+5 {
		h.buf = append([]byte(nil), h.buf...)
	}
}

func (h *tlsHalf) record(typ uint8, frag []byte, ev tlsEvents) {
	switch typ {
	case recChangeCipherSpec, recApplicationData:
		if !h.protected {
			h.protected = true
			ev.protected(h.fromClient)
		}
	case recAlert:
		if !h.protected && len(frag) == 2 {
			ev.alert(h.fromClient, frag[0], frag[1])
		}
	case recHandshake:
		if !h.protected {
			h.handshake(frag, ev)
		}
	}
}

// handshake gathers handshake messages, which may span records.
func (h *tlsHalf) handshake(frag []byte, ev tlsEvents) {
	for len(frag) > 0 {
		if h.skip > 0 {
			k := min(h.skip, len(frag))
			h.skip -= k
			frag = frag[k:]
			continue
		}
		h.hs = append(h.hs, frag...)
		frag = nil
		for len(h.hs) >= 4 && !h.protected {
			typ, n := h.hs[0], int(h.hs[1])<<16|int(h.hs[2])<<8|int(h.hs[3])
			if n > maxHandshakeMsg {
				h.skip = n - (len(h.hs) - 4)
				h.hs = nil
				break
			}
			if len(h.hs) < 4+n {
				break
			}
			ev.handshakeMsg(h.fromClient, typ, h.hs[4:4+n])
			h.hs = h.hs[4+n:]
		}
		if len(h.hs) == 0 {
			h.hs = nil
		}
	}
}

// alertName names the TLS alerts a refused handshake shows (RFC 8446
// section 6).
func alertName(desc uint8) string {
	switch desc {
	case 0:
		return "close_notify"
	case 10:
		return "unexpected_message"
	case 20:
		return "bad_record_mac"
	case 40:
		return "handshake_failure"
	case 42:
		return "bad_certificate"
	case 43:
		return "unsupported_certificate"
	case 44:
		return "certificate_revoked"
	case 45:
		return "certificate_expired"
	case 46:
		return "certificate_unknown"
	case 47:
		return "illegal_parameter"
	case 48:
		return "unknown_ca"
	case 50:
		return "decode_error"
	case 51:
		return "decrypt_error"
	case 70:
		return "protocol_version"
	case 71:
		return "insufficient_security"
	case 80:
		return "internal_error"
	case 86:
		return "inappropriate_fallback"
	case 90:
		return "user_canceled"
	case 109:
		return "missing_extension"
	case 110:
		return "unsupported_extension"
	case 112:
		return "unrecognized_name"
	case 116:
		return "certificate_required"
	case 120:
		return "no_application_protocol"
	}
	return fmt.Sprintf("alert_%d", desc)
}

// printable keeps at most n bytes of s and replaces anything but printable
// ASCII with '?', so names read off the wire cannot carry control bytes into
// a report.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
