package configs

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// zoneBlock is the HCL form of a zone block.
type zoneBlock struct {
	Listen    []string  `hcl:"listen"`
	Peers     *[]string `hcl:"peers,optional"` // required; checked by hand for a better message
	Advertise *string   `hcl:"advertise,optional"`
	Mode      *string   `hcl:"mode,optional"`
	Outsiders *string   `hcl:"outsiders,optional"`
	Scanners  *string   `hcl:"scanners,optional"`
	MaxCalls  *int      `hcl:"max_calls,optional"`
	UserAgent *string   `hcl:"user_agent,optional"`
	Trusted   *bool     `hcl:"trusted,optional"`
	Transfer  *string   `hcl:"transfer,optional"`
	// SessionExpires and MinSE are the zone's session timer (RFC 4028).
	SessionExpires *string         `hcl:"session_expires,optional"`
	MinSE          *string         `hcl:"min_se,optional"`
	TLS            *tlsBlock       `hcl:"tls,block"`
	Media          *zoneMediaBlock `hcl:"media,block"`
	Registrar      *registrarBlock `hcl:"registrar,block"`
}

// tlsBlock is the HCL form of a zone's tls block.
type tlsBlock struct {
	MinVersion *string   `hcl:"min_version,optional"`
	CertFile   *string   `hcl:"cert_file,optional"`
	KeyFile    *string   `hcl:"key_file,optional"`
	CAFile     *string   `hcl:"ca_file,optional"`
	VerifyPeer *bool     `hcl:"verify_peer,optional"`
	ClientAuth *string   `hcl:"client_auth,optional"`
	Ciphers    *[]string `hcl:"ciphers,optional"`
	ServerName *string   `hcl:"server_name,optional"`
	Body       hcl.Body  `hcl:",body"`
	DefRange   hcl.Range `hcl:",def_range"`
}

// zoneMediaBlock is the HCL form of a zone's media block.
type zoneMediaBlock struct {
	SRTP        *string   `hcl:"srtp,optional"`
	KeyExchange *[]string `hcl:"key_exchange,optional"`
	Suites      *[]string `hcl:"suites,optional"`
	Feedback    *string   `hcl:"rtcp_feedback,optional"`
	Body        hcl.Body  `hcl:",body"`
	DefRange    hcl.Range `hcl:",def_range"`
}

// zoneDecl is a decoded zone with the positions cross-checks report at.
type zoneDecl struct {
	zone *topology.Zone
	def  hcl.Range
	// ok is true when the listeners and media settings decoded without
	// error, so that checks built on them do not report follow-on errors.
	ok bool

	hasTLS, allTLS bool
	firstTLS       hcl.Range // the first tls:// listener
	tlsDef         hcl.Range // the tls block, if any
	mediaDef       hcl.Range // the media block, if any
	srtpAt         hcl.Range // the srtp attribute, if written
	kxAt           hcl.Range // the key_exchange attribute, if written
	kxElem         map[policy.KeyExchange]hcl.Range
	registrarZone  hcl.Range // the registrar block's zone attribute, if any
	registrarAt    hcl.Range // the registrar block's target attribute, if any
}

// mediaSubject is where a problem with the zone's media settings is
// reported: the srtp attribute, else the media block, else the zone.
func (zd *zoneDecl) mediaSubject() hcl.Range { return at(zd.srtpAt, zd.mediaDef, zd.def) }

// socketKey identifies a listening socket: TCP and TLS listeners on the same
// address would bind the same TCP port.
type socketKey struct {
	stream bool
	addr   netip.AddrPort
}

type claimed struct {
	listener topology.Listener
	zone     string
	at       hcl.Range
}

const srtpDefault = policy.RequirementRequire

// defaultKeyExchange is key_exchange when a zone does not set it.
var defaultKeyExchange = []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS}

func (l *loader) zone(b *hcl.Block) {
	name := b.Labels[0]
	var zb zoneBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &zb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)

	zd := &zoneDecl{def: b.DefRange, ok: !diags.HasErrors(), kxElem: map[policy.KeyExchange]hcl.Range{}}
	z := &topology.Zone{Policy: policy.Zone{
		Name:       name,
		MinTLS:     policy.VersionTLS12,
		VerifyPeer: true,
		ClientAuth: policy.ClientAuthNone,
		SRTP:       srtpDefault,
		Mode:       policy.ModeEnforce,
	}, Feedback: topology.FeedbackMirror, Outsiders: topology.RefusalRefuse, Scanners: topology.RefusalDrop,
		UserAgent: defaultUserAgent}
	zd.zone = z

	dup := false
	if !zoneNameRE.MatchString(name) {
		l.errorf(b.LabelRanges[0], "invalid zone name",
			"Zone name %q must start with a letter or digit and contain only letters, digits, '.', '_' and '-'.", name)
	}
	if prev, ok := l.zoneByName[name]; ok {
		l.errorf(b.LabelRanges[0], fmt.Sprintf("duplicate zone %q", name),
			"Zone names must be unique; previous declaration at %s.", where(prev.def))
		dup = true
	} else {
		l.zoneByName[name] = zd
	}

	// Listeners.
	if s.ok("listen") {
		if len(zb.Listen) == 0 {
			l.errorf(s.value("listen"), "no listeners",
				`Zone %q needs at least one listener, such as "udp://127.0.0.1:5060".`, name)
			zd.ok = false
		}
		zd.allTLS = len(zb.Listen) > 0
		for i, raw := range zb.Listen {
			r := s.elem("listen", i)
			ln, err := parseListener(raw)
			if err != nil {
				l.errorf(r, "invalid listener", "Listener %q: %s.", raw, err)
				zd.ok = false
				continue
			}
			if ln.Transport == policy.TransportTLS {
				if !zd.hasTLS {
					zd.firstTLS = r
				}
				zd.hasTLS = true
			} else {
				zd.allTLS = false
			}
			if !dup {
				l.claim(ln, name, r)
			}
			z.Listen = append(z.Listen, ln)
		}
	}
	switch {
	case zd.allTLS:
		z.Policy.Signaling = policy.RequirementRequire
	case zd.hasTLS:
		z.Policy.Signaling = policy.RequirementAllow
	default:
		z.Policy.Signaling = policy.RequirementOff
	}

	// Peers.
	switch {
	case !s.has("peers") || (s.ok("peers") && zb.Peers == nil):
		l.errorf(at(s.value("peers"), s.missing), "missing required argument",
			`The argument "peers" is required: it lists the networks allowed to send requests into zone %q. Use ["0.0.0.0/0", "::/0"] to admit everyone.`, name)
	case s.ok("peers"):
		if len(*zb.Peers) == 0 {
			l.warnf(s.value("peers"), fmt.Sprintf("zone %q admits no peers", name),
				"peers is empty, so every request arriving in this zone gets 403; the zone can still be a route's destination.")
		}
		z.Policy.Peers = []netip.Prefix{}
		for i, raw := range *zb.Peers {
			p, err := parsePeer(raw)
			if err != nil {
				l.errorf(s.elem("peers", i), "invalid peer", "Peer %q: %s.", raw, err)
				continue
			}
			z.Policy.Peers = append(z.Policy.Peers, p)
		}
	}

	// Advertise and mode.
	if zb.Advertise != nil && s.ok("advertise") {
		if err := checkHost(*zb.Advertise); err != nil {
			l.errorf(s.value("advertise"), "invalid advertise", "%s", sentence(err))
		} else {
			z.Advertise = *zb.Advertise
		}
	}
	if z.Advertise == "" && zd.ok {
		for i, ln := range z.Listen {
			if ln.Addr.Addr().IsUnspecified() {
				l.warnf(s.elem("listen", i), "unspecified listener address without advertise",
					"Zone %q listens on %s and sets no advertise, so Via and Contact would carry an address peers cannot reach; set advertise to this host's name or address.", name, ln)
				break
			}
		}
	}
	if zb.Mode != nil && s.ok("mode") {
		m, err := policy.ParseMode(*zb.Mode)
		switch {
		case err != nil:
			l.errorf(s.value("mode"), "invalid mode", "%s", sentence(err))
		case m == policy.ModeObserve:
			z.Policy.Mode = m
			l.warnf(s.value("mode"), fmt.Sprintf("zone %q is in observe mode", name),
				"Its decisions are recorded as would_reject but not enforced: calls that break policy go through.")
		default:
			z.Policy.Mode = m
		}
	}

	l.zoneEdge(z, &zb, s)
	l.registrar(zd, zb.Registrar, diags)

	// TLS.
	if zb.TLS != nil {
		zd.tlsDef = zb.TLS.DefRange
		z.TLS = l.tls(zb.TLS, diags)
	} else if zd.hasTLS {
		z.TLS = &topology.TLS{MinVersion: policy.VersionTLS12, VerifyPeer: true, ClientAuth: policy.ClientAuthNone}
	}
	if z.TLS != nil {
		z.Policy.MinTLS = z.TLS.MinVersion
		z.Policy.VerifyPeer = z.TLS.VerifyPeer
		z.Policy.ClientAuth = z.TLS.ClientAuth
		certOK := zb.TLS == nil || (!zb.TLS.has("cert_file") && !zb.TLS.has("key_file"))
		if zd.hasTLS && z.TLS.Lab() && certOK {
			l.warnf(at(zd.tlsDef, zd.firstTLS), "self-signed lab certificate; not for production",
				"Zone %q has a TLS listener but no cert_file, so parapet serves the self-signed lab certificate, which peers can verify only against the lab CA. Set cert_file and key_file.", name)
		}
	}

	// Media.
	if zb.Media != nil {
		zd.mediaDef = zb.Media.DefRange
		if !l.zoneMedia(zd, zb.Media, diags) {
			zd.ok = false
		}
	}
	if z.Policy.KeyExchange == nil {
		// Every key exchange that is safe on the leg: policy uses SDES
		// only on legs whose SIP is TLS (its keys are in the SDP), and
		// DTLS-SRTP wherever SRTP may run. SDES is offered first where
		// both can be, as SIP trunks support it more widely.
		z.Policy.KeyExchange = slices.Clone(defaultKeyExchange)
	}
	if z.Policy.Suites == nil {
		z.Policy.Suites = slices.Clone(policy.DefaultSuites)
	}
	if zd.ok {
		l.zoneChecks(zd)
	}

	if !dup {
		l.zones = append(l.zones, zd)
	}
}

// has reports whether the tls block writes the attribute.
func (tb *tlsBlock) has(name string) bool { return newScope(tb.Body, tb.DefRange, nil).has(name) }

// claim records a listener's socket and reports one that is already taken.
func (l *loader) claim(ln topology.Listener, zone string, r hcl.Range) {
	key := socketKey{stream: ln.Transport != policy.TransportUDP, addr: ln.Addr}
	prev, taken := l.listeners[key]
	switch {
	case !taken:
		l.listeners[key] = claimed{listener: ln, zone: zone, at: r}
	case prev.listener.Transport == ln.Transport:
		l.errorf(r, "duplicate listener",
			"%s is already declared in zone %q; previous declaration at %s.", ln, prev.zone, where(prev.at))
	default:
		l.errorf(r, "conflicting listeners",
			"%s and %s (zone %q) would both bind TCP %s; previous declaration at %s.", ln, prev.listener, prev.zone, ln.Addr, where(prev.at))
	}
}

// parseListener parses "udp://IP:PORT", "tcp://IP:PORT" or "tls://IP:PORT".
func parseListener(s string) (topology.Listener, error) {
	scheme, addr, ok := strings.Cut(s, "://")
	if !ok {
		return topology.Listener{}, errors.New(`missing scheme: write it as udp://IP:PORT, tcp://IP:PORT or tls://IP:PORT`)
	}
	var ln topology.Listener
	switch scheme {
	case "udp":
		ln.Transport = policy.TransportUDP
	case "tcp":
		ln.Transport = policy.TransportTCP
	case "tls":
		ln.Transport = policy.TransportTLS
	default:
		return topology.Listener{}, fmt.Errorf("unknown scheme %q (want udp, tcp or tls)", scheme)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err == nil {
		if ap.Port() == 0 {
			return topology.Listener{}, errors.New("port 0 is not allowed: give the port to listen on")
		}
		ln.Addr = ap
		return ln, nil
	}
	host, port, serr := net.SplitHostPort(addr)
	if serr != nil {
		h := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
		if ip, err := netip.ParseAddr(h); err == nil {
			return topology.Listener{}, fmt.Errorf("missing port: write %s://%s", scheme, netip.AddrPortFrom(ip, defaultPort(ln.Transport)))
		}
		if isDNSName(addr) {
			return topology.Listener{}, fmt.Errorf("%q is a host name: a listener binds to an IP address, with an explicit port", addr)
		}
		return topology.Listener{}, fmt.Errorf("invalid address %q: want IP:PORT ([IPv6]:PORT for IPv6)", addr)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if isDNSName(host) {
			return topology.Listener{}, fmt.Errorf("%q is a host name: a listener binds to an IP address", host)
		}
		return topology.Listener{}, fmt.Errorf("invalid IP address %q", host)
	}
	if _, err := parsePort(port); err != nil {
		return topology.Listener{}, err
	}
	return topology.Listener{}, fmt.Errorf("invalid address %q: want IP:PORT ([IPv6]:PORT for IPv6)", addr)
}

func defaultPort(t policy.Transport) uint16 {
	if t == policy.TransportTLS {
		return 5061
	}
	return 5060
}

// parsePeer parses a CIDR prefix or a bare IP (a /32 or /128).
func parsePeer(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a CIDR prefix (such as 10.0.0.0/8 or 2001:db8::/32)")
		}
		if m := p.Masked(); m != p {
			return netip.Prefix{}, fmt.Errorf("host bits are set: write %s for the network or %s for the host",
				m, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if isDNSName(s) {
			return netip.Prefix{}, errors.New("peers are IP addresses or CIDR prefixes, not host names")
		}
		return netip.Prefix{}, errors.New("not an IP address or CIDR prefix")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an IPv6 zone (%...) is not allowed in peers")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// tls converts a zone's tls block.
func (l *loader) tls(tb *tlsBlock, diags hcl.Diagnostics) *topology.TLS {
	s := newScope(tb.Body, tb.DefRange, diags)
	t := &topology.TLS{MinVersion: policy.VersionTLS12, VerifyPeer: true, ClientAuth: policy.ClientAuthNone}

	if tb.MinVersion != nil && s.ok("min_version") {
		v, err := policy.ParseTLSVersion(*tb.MinVersion)
		switch {
		case err != nil:
			l.errorf(s.value("min_version"), "invalid min_version", "%s", sentence(err))
		case v < policy.MinTLSFloor:
			l.errorf(s.value("min_version"), "TLS floor below 1.2 is refused (RFC 8996, NIST SP 800-52r2)",
				`min_version = %q would accept %s, which RFC 8996 deprecates and NIST SP 800-52r2 does not allow. Use "1.2" or "1.3".`, *tb.MinVersion, v)
		default:
			t.MinVersion = v
		}
	}

	cert := tb.CertFile != nil && s.ok("cert_file")
	key := tb.KeyFile != nil && s.ok("key_file")
	switch {
	case cert && !key && !s.has("key_file"):
		l.errorf(s.value("cert_file"), "cert_file without key_file",
			"Set key_file to the certificate's private key, or remove cert_file to use the lab certificate.")
	case key && !cert && !s.has("cert_file"):
		l.errorf(s.value("key_file"), "key_file without cert_file",
			"Set cert_file to the certificate chain, or remove key_file to use the lab certificate.")
	case cert && key:
		t.CertFile = l.checkFile(s, "cert_file", *tb.CertFile)
		t.KeyFile = l.checkFile(s, "key_file", *tb.KeyFile)
	}
	if tb.CAFile != nil && s.ok("ca_file") {
		t.CAFile = l.checkFile(s, "ca_file", *tb.CAFile)
	}

	if tb.VerifyPeer != nil && s.ok("verify_peer") {
		t.VerifyPeer = *tb.VerifyPeer
		if !t.VerifyPeer {
			l.warnf(s.value("verify_peer"), "peer certificates are not verified",
				"verify_peer = false accepts any certificate, so an attacker in the path can impersonate the peer and read signaling and SDES keys (164.312(d)).")
		}
	}
	if tb.ClientAuth != nil && s.ok("client_auth") {
		ca, err := policy.ParseClientAuth(*tb.ClientAuth)
		if err != nil {
			l.errorf(s.value("client_auth"), "invalid client_auth", "%s", sentence(err))
		} else {
			t.ClientAuth = ca
		}
		// With the lab certificate the lab CA is the default; with a real
		// one, verified client certificates need the CA that issues them.
		if t.ClientAuth != policy.ClientAuthNone && t.VerifyPeer && cert && tb.CAFile == nil {
			l.errorf(s.value("client_auth"), "client_auth without ca_file",
				`client_auth = %q verifies client certificates, and without ca_file they would be checked against the system roots, which any public CA's customer satisfies. Set ca_file to the CA that issues the peers' certificates.`, *tb.ClientAuth)
		}
	}
	if tb.Ciphers != nil && s.ok("ciphers") {
		t.Ciphers = l.ciphers(s, *tb.Ciphers)
		if len(t.Ciphers) > 0 && t.MinVersion == policy.VersionTLS13 {
			l.warnf(s.value("ciphers"), "ciphers have no effect with min_version 1.3",
				"The ciphers list applies to TLS 1.2 only; TLS 1.3 suites are chosen by Go and cannot be configured.")
		}
	}
	if tb.ServerName != nil && s.ok("server_name") {
		if err := checkHost(*tb.ServerName); err != nil {
			l.errorf(s.value("server_name"), "invalid server_name", "%s", sentence(err))
		} else {
			t.ServerName = *tb.ServerName
		}
	}
	return t
}

// ciphers checks a list of TLS 1.2 cipher suite names against crypto/tls.
func (l *loader) ciphers(s *scope, names []string) []string {
	secure := map[string]*tls.CipherSuite{}
	var secureNames []string
	for _, cs := range tls.CipherSuites() {
		secure[cs.Name] = cs
		secureNames = append(secureNames, cs.Name)
	}
	insecure := map[string]bool{}
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	out := []string{}
	seen := map[string]bool{}
	for i, n := range names {
		r := s.elem("ciphers", i)
		cs, ok := secure[n]
		switch {
		case insecure[n]:
			l.errorf(r, "insecure cipher suite", "%s is insecure and never allowed; remove it.", n)
		case !ok:
			l.errorf(r, "unknown cipher suite",
				"%q is not a TLS 1.2 cipher suite as Go names it (for example TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384).%s", n, suggest(n, secureNames))
		case !slices.Contains(cs.SupportedVersions, tls.VersionTLS12):
			l.errorf(r, "TLS 1.3 cipher suites are not configurable",
				"%s is a TLS 1.3 suite; Go always enables all TLS 1.3 suites. List TLS 1.2 suites only.", n)
		case seen[n]:
			l.errorf(r, "duplicate cipher suite", "%s is listed twice.", n)
		default:
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// zoneMedia converts a zone's media block. It reports whether every value
// was valid.
func (l *loader) zoneMedia(zd *zoneDecl, mb *zoneMediaBlock, diags hcl.Diagnostics) bool {
	s := newScope(mb.Body, mb.DefRange, diags)
	z := &zd.zone.Policy
	valid := true
	for _, a := range []string{"srtp", "key_exchange", "suites", "rtcp_feedback"} {
		if s.has(a) && !s.ok(a) {
			valid = false
		}
	}

	if mb.SRTP != nil && s.ok("srtp") {
		zd.srtpAt = s.value("srtp")
		r, err := policy.ParseRequirement(*mb.SRTP)
		if err != nil {
			l.errorf(s.value("srtp"), "invalid srtp", "%s", sentence(err))
			valid = false
		} else {
			z.SRTP = r
		}
	}

	if mb.Feedback != nil && s.ok("rtcp_feedback") {
		switch f := topology.Feedback(*mb.Feedback); f {
		case topology.FeedbackMirror, topology.FeedbackOn, topology.FeedbackOff:
			zd.zone.Feedback = f
		default:
			l.errorf(s.value("rtcp_feedback"), "invalid rtcp_feedback",
				`rtcp_feedback = %q: want "mirror" (offer AVPF/SAVPF only when the other leg did), "on" or "off".`, *mb.Feedback)
			valid = false
		}
	}

	if mb.KeyExchange != nil && s.ok("key_exchange") {
		zd.kxAt = s.value("key_exchange")
		z.KeyExchange = []policy.KeyExchange{}
		for i, raw := range *mb.KeyExchange {
			r := s.elem("key_exchange", i)
			k, err := policy.ParseKeyExchange(raw)
			switch {
			case err != nil:
				l.errorf(r, "invalid key_exchange", "%s", sentence(err))
				valid = false
			case slices.Contains(z.KeyExchange, k):
				l.errorf(r, "duplicate key exchange", "%s is listed twice.", k)
				valid = false
			default:
				z.KeyExchange = append(z.KeyExchange, k)
				zd.kxElem[k] = r
			}
		}
	}

	if mb.Suites != nil && s.ok("suites") {
		z.Suites = []policy.Suite{}
		for i, raw := range *mb.Suites {
			r := s.elem("suites", i)
			su, err := policy.ParseSuite(raw)
			switch {
			case err != nil && policy.Suite(raw).Null():
				l.errorf(r, "NULL SRTP suite refused", "%s", sentence(err))
				valid = false
			case err != nil:
				l.errorf(r, "unsupported SRTP suite", "%q is not an SRTP suite parapet implements; use %s.", raw, suiteList(policy.SupportedSuites))
				valid = false
			case slices.Contains(z.Suites, su):
				l.errorf(r, "duplicate SRTP suite", "%s is listed twice.", su)
				valid = false
			default:
				z.Suites = append(z.Suites, su)
				if su == policy.SuiteAESCM128HMACSHA1_32 {
					l.warnf(r, "32-bit authentication tag",
						"%s authenticates each packet with a 32-bit tag, which allows forgeries after far fewer tries than the 80-bit tag; prefer AES_CM_128_HMAC_SHA1_80 or an AEAD suite.", su)
				}
			}
		}
		if len(z.Suites) == 0 && valid {
			l.errorf(s.value("suites"), "no SRTP suites",
				`suites is empty, so no SRTP suite could be negotiated; omit it for the default (%s).`, suiteList(policy.DefaultSuites))
			valid = false
		}
	}
	return valid
}

func suiteList(ss []policy.Suite) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ", ")
}

// zoneChecks runs the cross-checks within one zone: what the per-leg key
// exchange rule (SDES only over TLS) will do with the zone's listeners, and
// whether a required protection is achievable.
func (l *loader) zoneChecks(zd *zoneDecl) {
	z := &zd.zone.Policy
	sdes := slices.Contains(z.KeyExchange, policy.KeyExchangeSDES)
	dtls := slices.Contains(z.KeyExchange, policy.KeyExchangeDTLS)
	clear := transports(clearListeners(zd.zone.Listen))

	if r, ok := zd.kxElem[policy.KeyExchangeDTLS]; ok && z.SRTP != policy.RequirementOff && !zd.hasTLS {
		l.warnf(r, fmt.Sprintf("DTLS-SRTP fingerprints would cross in clear: zone %s has no TLS listener", z.Name),
			"DTLS-SRTP keeps the keys off the wire, but the certificate fingerprints that authenticate the handshake travel in the SDP over this zone's %s signaling: an attacker who can rewrite that signaling can intercept the media. Add a tls:// listener where the network is not trusted.", transports(zd.zone.Listen))
	}
	switch {
	case z.SRTP == policy.RequirementOff || !sdes:
	case !zd.hasTLS:
		// Listed explicitly (the default lists it too, harmlessly): SDES
		// can never be used on this zone's listeners.
		if _, listed := zd.kxElem[policy.KeyExchangeSDES]; !listed {
			break
		}
		r := at(zd.kxElem[policy.KeyExchangeSDES], zd.kxAt, zd.mediaSubject())
		if z.SRTP == policy.RequirementRequire && !dtls {
			l.errorf(r, fmt.Sprintf("SDES keys would cross in clear: zone %s requires SRTP with SDES but has no TLS listener", z.Name),
				"SDES carries the SRTP keys in the SDP, which travels over this zone's %s signaling in clear, so parapet refuses every SDES offer on it (488, rule media.sdes-clear-signaling) and no call from it could meet srtp = \"require\". Add a tls:// listener, or add dtls to key_exchange.", clear)
		} else {
			l.warnf(r, fmt.Sprintf("SDES is never used on zone %s: it has no TLS listener", z.Name),
				"SDES carries the SRTP keys in the SDP, which travels over this zone's %s signaling in clear. parapet refuses an SDES-only offer on it (488, rule media.sdes-clear-signaling), takes a best-effort one (RTP/AVP with a=crypto) as plain RTP, and offers SDES only on legs it dials over TLS. Add a tls:// listener, or remove sdes from key_exchange.", clear)
		}
	case !zd.allTLS:
		// The issue this check exists for: a zone with clear and TLS
		// listeners. The rule holds per leg; say what it will do.
		r := at(zd.kxElem[policy.KeyExchangeSDES], zd.kxAt, zd.mediaSubject(), zd.def)
		other := `plain RTP stays possible there (srtp = "allow")`
		switch {
		case z.SRTP == policy.RequirementRequire && dtls:
			other = "calls over them must use DTLS-SRTP"
		case z.SRTP == policy.RequirementRequire:
			other = "no key exchange is left for them, so every call over them gets 488: add dtls to key_exchange"
		case dtls:
			other = `DTLS-SRTP offers are taken there, and plain RTP stays possible (srtp = "allow")`
		}
		unlessDTLS := ""
		if dtls {
			unlessDTLS = " unless it also carries a DTLS fingerprint"
		}
		l.warnf(r, fmt.Sprintf("zone %s mixes clear and TLS listeners with SDES allowed", z.Name),
			"SDES keys are taken and offered only on legs whose SIP is TLS. Over this zone's %s listeners an SDES offer (RTP/SAVP with a=crypto) gets 488 (rule media.sdes-clear-signaling)%s; %s. Put clear and TLS peers in separate zones to make the difference visible in records.", clear, unlessDTLS, other)
	}
	if _, listed := zd.kxElem[policy.KeyExchangeDTLS]; z.SRTP == policy.RequirementRequire && !zd.hasTLS && dtls && !listed {
		l.warnf(zd.mediaSubject(), fmt.Sprintf("zone %s takes only DTLS-SRTP calls: it requires SRTP and has no TLS listener", z.Name),
			`SDES keys never cross in clear, so over this zone's %s listeners only DTLS-SRTP offers can meet srtp = "require" (its fingerprints still travel in clear SIP); plain RTP calls get 488. srtp defaults to "require": for a zone of phones or a PBX that cannot do SRTP, set srtp = "allow".`, transports(zd.zone.Listen))
	}
	if z.SRTP == policy.RequirementRequire && !sdes && !dtls {
		l.errorf(at(zd.srtpAt, zd.kxAt, zd.mediaDef, zd.def),
			fmt.Sprintf("zone %s requires SRTP but allows no key exchange", z.Name),
			`Add "sdes" or "dtls" to key_exchange (omit key_exchange for both), or set srtp = "allow" or "off".`)
	}
	if z.SRTP == policy.RequirementAllow && zd.hasTLS {
		l.warnf(zd.mediaSubject(), "SRTP is optional on a TLS zone",
			`Zone %q protects signaling with TLS but lets media run as plain RTP; set srtp = "require" to protect media as well (164.312(e)(2)(ii)).`, z.Name)
	}
}

// clearListeners are the listeners whose SIP is not TLS.
func clearListeners(ls []topology.Listener) []topology.Listener {
	var out []topology.Listener
	for _, l := range ls {
		if l.Transport != policy.TransportTLS {
			out = append(out, l)
		}
	}
	return out
}

// transports names the transports of a zone's listeners, e.g. "udp/tcp".
func transports(ls []topology.Listener) string {
	var names []string
	for _, l := range ls {
		if n := l.Transport.String(); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "plain"
	}
	return strings.Join(names, "/")
}
