package b2bua

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// What a request or connection from outside a zone's peers came to; each
// is counted in exactly one of the tally's counts.
type outsiderFate int

const (
	fateRefused    outsiderFate = iota // one stateless 403
	fateDropped                        // zone drops outsiders
	fateScanner                        // a scanner's signature
	fateOverBudget                     // beyond the outsider request budgets
	fateConnection                     // TCP/TLS connection closed at accept
	fateTLSRefused                     // TLS handshake failed
	fateCount
)

var fateNames = [fateCount]string{"refused", "dropped", "scanner", "over_budget", "connection", "tls_refused"}

// String is the fate's name in metrics.
func (f outsiderFate) String() string { return fateNames[f] }

// Bounds of one zone's tally for one period: its memory does not grow with
// the number of strangers. Sources and prefixes beyond the tables are
// counted in the totals only.
const (
	tallyTable   = 1024 // addresses and prefixes tracked per period
	tallyListed  = 16   // of which a record lists the busiest
	tallyMethods = 16   // methods named; the rest count as "other"
)

// outsiderTallies folds every refusal of an outsider into one summary
// record per zone and period (flushed by the event-folding tick), never
// one record per request: a flood from any number of addresses grows the
// compliance log by a fixed number of records.
type outsiderTallies struct {
	mu    sync.Mutex
	zones map[string]*tallySlot
}

type tallySlot struct {
	t        compliance.OutsiderTally
	sources  map[netip.Addr]uint64
	prefixes map[netip.Prefix]uint64
}

func newOutsiderTallies() *outsiderTallies {
	return &outsiderTallies{zones: map[string]*tallySlot{}}
}

// add counts one request (method set) or connection (method "") from src.
func (o *outsiderTallies) add(zone string, src netip.Addr, method string, fate outsiderFate, now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sl := o.zones[zone]
	if sl == nil {
		sl = &tallySlot{t: compliance.OutsiderTally{Since: now, Methods: map[string]uint64{}},
			sources: map[netip.Addr]uint64{}, prefixes: map[netip.Prefix]uint64{}}
		o.zones[zone] = sl
	}
	t := &sl.t
	counts := [fateCount]*uint64{&t.Refused, &t.Dropped, &t.Scanners, &t.OverBudget, &t.Connections, &t.TLSRefused}
	*counts[fate]++
	if method != "" {
		if _, ok := t.Methods[method]; !ok && len(t.Methods) >= tallyMethods {
			method = "other"
		}
		t.Methods[method]++
	}
	if src.IsValid() {
		bump(sl.sources, src)
		bump(sl.prefixes, prefixOf(src))
	}
}

// bump counts k in m, unless m is full and k is new.
func bump[K comparable](m map[K]uint64, k K) {
	if _, ok := m[k]; ok || len(m) < tallyTable {
		m[k]++
	}
}

// flush returns the zones' tallies as records and starts new periods.
func (o *outsiderTallies) flush() []*compliance.ConnEvent {
	o.mu.Lock()
	zones := o.zones
	o.zones = map[string]*tallySlot{}
	o.mu.Unlock()
	out := make([]*compliance.ConnEvent, 0, len(zones))
	for zone, sl := range zones {
		t := sl.t
		t.Sources = busiest(sl.sources, netip.Addr.String)
		t.Prefixes = busiest(sl.prefixes, netip.Prefix.String)
		out = append(out, &compliance.ConnEvent{Event: compliance.EventOutsiders, Zone: zone, Tally: &t})
	}
	slices.SortFunc(out, func(a, b *compliance.ConnEvent) int { return cmp.Compare(a.Zone, b.Zone) })
	return out
}

// busiest lists the tallyListed keys of m with the highest counts, most
// first (ties by key, so that a record does not depend on map order).
func busiest[K comparable](m map[K]uint64, str func(K) string) []compliance.TallyEntry {
	out := make([]compliance.TallyEntry, 0, len(m))
	for k, n := range m {
		out = append(out, compliance.TallyEntry{Key: str(k), Count: n})
	}
	slices.SortFunc(out, func(a, b compliance.TallyEntry) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out[:min(len(out), tallyListed)]
}

// prefixOf is the prefix a source shares its budgets with: its /24, or its
// /64 (one IPv6 host commonly holds a whole /64).
func prefixOf(a netip.Addr) netip.Prefix {
	bits := 64
	if a.Is4() {
		bits = 24
	}
	p, _ := a.Prefix(bits)
	return p
}
