package b2bua

import (
	"hash/maphash"
	"net/netip"

	"golang.org/x/time/rate"

	"github.com/parapet-sbc/parapet/topology"
)

// Sizes of the budget tables. A source or prefix is charged to the slot its
// hash picks: strangers that collide share a budget, which only ever makes
// them poorer, and memory stays fixed however many addresses send.
const (
	sourceSlots = 4096
	prefixSlots = 1024
)

// outsiderBudget is how many requests from outside the zones' peers
// parapet answers: per source, per /24 or /64, and all together. A request
// beyond any of them is dropped unanswered. Peers never draw on it.
type outsiderBudget struct {
	limits   topology.Limits
	seed     maphash.Seed
	sources  []*rate.Limiter
	prefixes []*rate.Limiter
	all      *rate.Limiter
}

func newOutsiderBudget(lim topology.Limits) *outsiderBudget {
	b := &outsiderBudget{limits: lim, seed: maphash.MakeSeed(),
		sources: make([]*rate.Limiter, sourceSlots), prefixes: make([]*rate.Limiter, prefixSlots),
		all: rate.NewLimiter(rate.Limit(lim.OutsiderRate), burst(lim.OutsiderRate))}
	for i := range b.sources {
		b.sources[i] = rate.NewLimiter(rate.Limit(lim.SourceRate), burst(lim.SourceRate))
	}
	for i := range b.prefixes {
		b.prefixes[i] = rate.NewLimiter(rate.Limit(lim.PrefixRate), burst(lim.PrefixRate))
	}
	return b
}

// burst is a bucket as deep as one second's rate, and at least one.
func burst(r float64) int { return max(1, int(r)) }

// allow charges one request from src to its source's, its prefix's and the
// site's budgets, in that order, and reports whether all three had room. A
// source over its own budget does not draw on the others'.
func (b *outsiderBudget) allow(src netip.Addr) bool {
	src = src.Unmap()
	return b.sources[b.slot(src, sourceSlots)].Allow() &&
		b.prefixes[b.slot(prefixOf(src).Addr(), prefixSlots)].Allow() &&
		b.all.Allow()
}

func (b *outsiderBudget) slot(a netip.Addr, n int) int {
	raw := a.As16()
	return int(maphash.Bytes(b.seed, raw[:]) % uint64(n))
}
