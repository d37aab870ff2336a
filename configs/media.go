package configs

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"

	"github.com/parapet-sbc/parapet/topology"
)

// mediaBlock is the HCL form of the top-level media block.
type mediaBlock struct {
	Address     string  `hcl:"address"`
	Advertise   *string `hcl:"advertise,optional"`
	Ports       *string `hcl:"ports,optional"`
	Timeout     *string `hcl:"timeout,optional"`
	HoldTimeout *string `hcl:"hold_timeout,optional"`
}

// complianceBlock is the HCL form of the compliance block.
type complianceBlock struct {
	Log          *string `hcl:"log,optional"`
	Pseudonymize *bool   `hcl:"pseudonymize,optional"`
	RotateSize   *string `hcl:"rotate_size,optional"`
}

// adminBlock is the HCL form of the admin block.
type adminBlock struct {
	Listen string `hcl:"listen"`
}

// Media defaults.
const (
	defaultPorts   = "20000-29999"
	defaultTimeout = 30 * time.Second
	defaultHold    = time.Hour
	minTimeout     = time.Second
	minMediaPort   = 1024
	minMediaPorts  = 4
)

func (l *loader) media(b *hcl.Block) topology.Media {
	var mb mediaBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &mb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	m := topology.Media{Timeout: defaultTimeout, HoldTimeout: defaultHold}
	m.PortMin, m.PortMax, _ = parsePorts(defaultPorts)

	if s.ok("address") {
		a, err := netip.ParseAddr(mb.Address)
		switch {
		case err != nil:
			l.errorf(s.value("address"), "invalid media address", "address %q must be an IP address (where the relay binds), not a host name.", mb.Address)
		case a.Zone() != "":
			l.errorf(s.value("address"), "invalid media address", "address %q: an IPv6 zone (%%...) is not allowed.", mb.Address)
		default:
			m.Address = a.Unmap()
		}
	}
	if mb.Advertise != nil && s.ok("advertise") {
		a, err := netip.ParseAddr(*mb.Advertise)
		switch {
		case err != nil || a.Zone() != "":
			l.errorf(s.value("advertise"), "invalid media advertise", "advertise %q must be an IP address: it is written in SDP c= lines.", *mb.Advertise)
		case a.IsUnspecified():
			l.errorf(s.value("advertise"), "invalid media advertise", "advertise %q is unspecified; peers cannot send media to it.", *mb.Advertise)
		default:
			m.Advertise = a.Unmap()
		}
	}
	if m.Address.IsUnspecified() && !m.Advertise.IsValid() && (mb.Advertise == nil || !s.has("advertise")) {
		l.warnf(s.value("address"), "unspecified media address without advertise",
			"The relay binds %s and no advertise is set, so SDP would carry %s, which peers treat as on hold; set advertise to the address peers should send media to.", m.Address, m.Address)
	}
	if mb.Ports != nil && s.ok("ports") {
		lo, hi, err := parsePorts(*mb.Ports)
		if err != nil {
			l.errorf(s.value("ports"), "invalid ports", "ports = %q: %s.", *mb.Ports, err)
		} else {
			m.PortMin, m.PortMax = lo, hi
		}
	}
	if d, ok := l.duration(s, "timeout", mb.Timeout, `"30s" or "2m"`, minTimeout,
		"the media timeout must be at least 1s."); ok {
		m.Timeout = d
	}
	if d, ok := l.duration(s, "hold_timeout", mb.HoldTimeout, `"1h" or "90m"`, m.Timeout,
		fmt.Sprintf("it is shorter than timeout (%s): a call on hold would be ended sooner than one that is not.", m.Timeout)); ok {
		m.HoldTimeout = d
	}
	return m
}

// duration reads the optional duration attribute name (v nil when absent):
// it reports an error and false when v is not a duration or is below min
// (tooShort says why), and returns the value otherwise.
func (l *loader) duration(s *scope, name string, v *string, examples string, min time.Duration, tooShort string) (time.Duration, bool) {
	if v == nil || !s.ok(name) {
		return 0, false
	}
	d, err := time.ParseDuration(*v)
	switch {
	case err != nil:
		l.errorf(s.value(name), "invalid "+name, `%s = %q is not a duration; write it as Go does, such as %s.`, name, *v, examples)
	case d < min:
		l.errorf(s.value(name), name+" too short", `%s = %q: %s`, name, *v, tooShort)
	default:
		return d, true
	}
	return 0, false
}

// parsePorts parses "LO-HI" with 1024 <= LO < HI <= 65535, rounds LO up to
// an even port (RTP on even ports, RTCP on the odd port above) and requires
// at least four ports.
func parsePorts(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want LO-HI, such as %q", defaultPorts)
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("want LO-HI with decimal ports, such as %q", defaultPorts)
	}
	if lo < minMediaPort || hi > 65535 || lo >= hi {
		return 0, 0, fmt.Errorf("the range must satisfy %d <= LO < HI <= 65535", minMediaPort)
	}
	lo += lo % 2
	if hi-lo+1 < minMediaPorts {
		return 0, 0, fmt.Errorf("the range must hold at least %d ports (from an even LO)", minMediaPorts)
	}
	return lo, hi, nil
}

func (l *loader) compliance(b *hcl.Block, c Compliance) Compliance {
	var cb complianceBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &cb)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	if cb.Log != nil && s.ok("log") {
		if strings.TrimSpace(*cb.Log) == "" {
			l.errorf(s.value("log"), "empty path", `log must name a file; omit it for the default "${state_dir}/compliance.jsonl".`)
		} else {
			c.Log = l.resolve(*cb.Log)
		}
	}
	if cb.RotateSize != nil && s.ok("rotate_size") {
		n, err := parseSize(*cb.RotateSize)
		switch {
		case err != nil:
			l.errorf(s.value("rotate_size"), "invalid rotate_size", `rotate_size = %q: %v. Write a size such as "64MiB" or "1GB"; omit it never to rotate.`, *cb.RotateSize, err)
		case n != 0 && n < minRotateSize:
			l.errorf(s.value("rotate_size"), "invalid rotate_size", `rotate_size = %q is below the minimum of 64KiB.`, *cb.RotateSize)
		default:
			c.RotateBytes = n
		}
	}
	if cb.Pseudonymize != nil && s.ok("pseudonymize") {
		c.Pseudonymize = *cb.Pseudonymize
		if !c.Pseudonymize {
			l.warnf(s.value("pseudonymize"), "caller and callee identifiers are stored in clear",
				"pseudonymize = false writes phone numbers and SIP identities into the compliance log as they are; the log then holds identifiers the Privacy Rule protects (164.514).")
		}
	}
	return c
}

// minRotateSize keeps a rotation limit from splitting the log into a file
// per record.
const minRotateSize = 64 << 10

// parseSize reads a byte count: a number with an optional unit B, KB, MB,
// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024). "0" means never.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("no number")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("number out of range")
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
	m, ok := mult[strings.TrimSpace(t[i:])]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (B, KB, MB, GB, KiB, MiB, GiB)", strings.TrimSpace(t[i:]))
	}
	if n > (1<<62)/m {
		return 0, fmt.Errorf("size out of range")
	}
	return n * m, nil
}

func (l *loader) admin(b *hcl.Block) Admin {
	var ab adminBlock
	diags := gohcl.DecodeBody(b.Body, l.ectx, &ab)
	l.add(diags)
	s := newScope(b.Body, b.DefRange, diags)
	if !s.ok("listen") {
		return Admin{}
	}
	ap, err := netip.ParseAddrPort(ab.Listen)
	switch {
	case err != nil:
		l.errorf(s.value("listen"), "invalid admin listen", `listen = %q must be IP:PORT, such as "127.0.0.1:9090" ([IPv6]:PORT for IPv6).`, ab.Listen)
		return Admin{}
	case ap.Port() == 0:
		l.errorf(s.value("listen"), "invalid admin listen", `listen = %q: port 0 is not allowed.`, ab.Listen)
		return Admin{}
	}
	return Admin{Listen: ap.String()}
}
