package b2bua

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Log lines are folded as records are: a warning or error that repeats is
// written once per interval, and the ones in between are counted. The
// count goes out with the next line of its kind ("repeated": N), or, when
// the kind goes quiet, in a line of its own at the next drain, so that a
// flood of alike faults (a full disk, strangers' garbage, accept errors)
// costs a few lines and loses no count. Lines below warning are never
// folded: each call's lines stay.
//
// A kind is the level, the message and the attributes the logger was built
// with (its zone, say); a line's own attributes (an address, an error
// text) are not part of it, so that a fault from many sources folds too.

// maxLineKinds bounds the folder's memory; kinds beyond it share one.
const maxLineKinds = 1000

type lineFolder struct {
	every time.Duration
	mu    sync.Mutex
	kinds map[string]*lineKind
}

type lineKind struct {
	last     time.Time // when a line of the kind last went out
	repeated uint64    // lines folded since
	latest   slog.Record
	h        slog.Handler // the handler the latest folded line was for
}

func newLineFolder(every time.Duration) *lineFolder {
	return &lineFolder{every: every, kinds: map[string]*lineKind{}}
}

// foldHandler folds the lines of a handler through a lineFolder.
type foldHandler struct {
	h     slog.Handler
	f     *lineFolder
	scope string // the attributes and groups the logger was built with
}

func newFoldHandler(h slog.Handler, f *lineFolder) *foldHandler { return &foldHandler{h: h, f: f} }

func (fh *foldHandler) Enabled(ctx context.Context, l slog.Level) bool { return fh.h.Enabled(ctx, l) }

func (fh *foldHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(fh.scope)
	for _, a := range attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	return &foldHandler{h: fh.h.WithAttrs(attrs), f: fh.f, scope: b.String()}
}

func (fh *foldHandler) WithGroup(name string) slog.Handler {
	return &foldHandler{h: fh.h.WithGroup(name), f: fh.f, scope: fh.scope + " [" + name + "]"}
}

func (fh *foldHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return fh.h.Handle(ctx, r)
	}
	n, ok := fh.f.pass(r.Level.String()+"|"+r.Message+"|"+fh.scope, r, fh.h)
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Uint64("repeated", n), slog.Duration("over", fh.f.every))
	}
	return fh.h.Handle(ctx, r)
}

// pass reports whether a line of kind key goes out now, and how many were
// folded since the last one that did; a folded line is kept as the kind's
// latest, for the drain.
func (f *lineFolder) pass(key string, r slog.Record, h slog.Handler) (uint64, bool) {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.kinds[key]
	if k == nil {
		if len(f.kinds) >= maxLineKinds {
			key = "overflow|" + r.Level.String()
			k = f.kinds[key]
		}
		if k == nil {
			f.kinds[key] = &lineKind{last: now}
			return 0, true
		}
	}
	if now.Sub(k.last) < f.every {
		k.repeated++
		k.latest, k.h = r.Clone(), h
		return 0, false
	}
	n := k.repeated
	k.last, k.repeated, k.h = now, 0, nil
	return n, true
}

// drain writes, for each kind with folded lines whose interval has passed
// (every kind, when all is set), its latest line with the count, and
// forgets kinds quiet for an interval.
func (f *lineFolder) drain(now time.Time, all bool) {
	type out struct {
		r slog.Record
		h slog.Handler
		n uint64
	}
	var outs []out
	f.mu.Lock()
	for key, k := range f.kinds {
		switch {
		case !all && now.Sub(k.last) < f.every:
		case k.repeated > 0:
			outs = append(outs, out{k.latest, k.h, k.repeated})
			k.last, k.repeated, k.h = now, 0, nil
		default:
			delete(f.kinds, key)
		}
	}
	f.mu.Unlock()
	for _, o := range outs {
		r := o.r.Clone()
		r.AddAttrs(slog.Uint64("repeated", o.n), slog.Duration("over", f.every))
		o.h.Handle(context.Background(), r) //nolint:errcheck // a log line that cannot be written has nowhere to go
	}
}
