package configs

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/parapet-sbc/parapet/topology"
)

// minUDPKeepAlive is the shortest udp_keepalive: a ping a user every few
// seconds keeps no NAT binding better, and costs every phone.
const minUDPKeepAlive = 5 * time.Second

// registrarBlock is the HCL form of a zone's registrar block: where the
// zone's users register through parapet.
type registrarBlock struct {
	Zone   string `hcl:"zone"`
	Target string `hcl:"target"`
	// UDPKeepAlive is how often users registered over UDP are pinged
	// (OPTIONS); "0s" turns the pings off.
	UDPKeepAlive *string `hcl:"udp_keepalive,optional"`
	// Callers is "registered" (the default) or "any".
	Callers  *string   `hcl:"callers,optional"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}

// registrar reads zone zd's registrar block, if any. The zone it names is
// checked once every zone is known (registrarZone).
func (l *loader) registrar(zd *zoneDecl, rb *registrarBlock, diags hcl.Diagnostics) {
	if rb == nil {
		return
	}
	s := newScope(rb.Body, rb.DefRange, diags)
	r := &topology.Registrar{UDPKeepAlive: topology.DefaultUDPKeepAlive}
	if d, ok := l.duration(s, "udp_keepalive", rb.UDPKeepAlive, `"25s" or "0s" (off)`, 0, ""); ok {
		if d != 0 && d < minUDPKeepAlive {
			l.errorf(s.value("udp_keepalive"), "udp_keepalive too short",
				`udp_keepalive = %q: at least %s between pings of one user, or "0s" for none.`, *rb.UDPKeepAlive, minUDPKeepAlive)
		}
		r.UDPKeepAlive = d
	}
	if rb.Callers != nil && s.ok("callers") {
		switch *rb.Callers {
		case "registered":
		case "any":
			r.Callers = topology.CallersAny
		default:
			l.errorf(s.value("callers"), "invalid callers",
				`callers = %q: "registered" (calls only from users registered through parapet, over the connection they registered on) or "any" (any of the zone's peers).`, *rb.Callers)
		}
	}
	if s.ok("target") {
		t, err := parseTarget(rb.Target)
		if err != nil {
			l.errorf(s.value("target"), "invalid registrar target", "Registrar target %q: %s.", rb.Target, err)
			return
		}
		r.Target = t
		zd.registrarAt = s.value("target")
	}
	if s.ok("zone") {
		r.Zone = rb.Zone
		zd.registrarZone = s.value("zone")
	}
	zd.zone.Registrar = r
}

// registrarZone checks that the zone a registrar block names exists, is
// another zone, and listens on the transport of the registrar's target:
// the Path parapet adds names that listener, and the registrar's calls to
// the users come to it.
func (l *loader) registrarZone(zd *zoneDecl) {
	r := zd.zone.Registrar
	if r == nil || r.Zone == "" {
		return
	}
	name := zd.zone.Policy.Name
	rz, ok := l.zoneByName[r.Zone]
	switch {
	case !ok:
		l.errorf(zd.registrarZone, fmt.Sprintf("unknown zone %q", r.Zone),
			"Zone %q names zone %q as its registrar's zone, but no zone of that name is declared.%s", name, r.Zone, suggest(r.Zone, l.zoneNames()))
		return
	case r.Zone == name:
		l.errorf(zd.registrarZone, "registrar in the users' own zone",
			"Zone %q relays its users' REGISTER requests to a registrar in another zone (the PBX side); it names itself.", name)
		return
	}
	t := r.Target.Transport
	if !rz.ok || r.Target.Host == "" {
		return
	}
	for _, ln := range rz.zone.Listen {
		if ln.Transport == t {
			return
		}
	}
	l.errorf(zd.registrarAt, fmt.Sprintf("registrar over %s, but zone %q has no %s listener", t, r.Zone, t),
		"Zone %q relays REGISTER to %q over %s, and the Path parapet adds, where the registrar sends its calls to the users, names parapet's %s listener in zone %q, which has none: add a %s:// listener to zone %q, or reach the registrar over a transport it listens on.", name, r.Target.URI, t, t, r.Zone, t, r.Zone)
}
