package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parapet-sbc/parapet/policy"
)

// maxTraceLine bounds a line of a text trace; longer lines are skipped.
const maxTraceLine = 64 << 10

// traceTime matches the timestamps traces put before a message:
// 2026-12-07 10:11:12.345678, 2026/12/07 10:11:12, 2026-12-07T10:11:12Z.
var traceTime = regexp.MustCompile(`(\d{4})[-/](\d{2})[-/](\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?`)

// traceContext is what the lines before a message say about it.
type traceContext struct {
	src, dst  netip.AddrPort
	transport policy.Transport
	hasTrans  bool
	t         time.Time
}

// readTrace reads a plain-text SIP trace: messages as sngrep, ngrep, a
// proxy's siptrace or a softphone log print them, separated by blank lines,
// timestamps or "U 1.2.3.4:5060 -> 5.6.7.8:5060" lines. Signaling and SDP
// are judged; there are no packets, so no media flows.
func (a *analyzer) readTrace(r io.Reader, path string) error {
	a.inTrace = true
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxTraceLine)
	var ctx traceContext
	var msg []string // lines of the message being read
	bodyLen, want := 0, -1
	inBody := false
	untimed := 0
	flush := func() {
		if len(msg) > 0 {
			if ctx.t.IsZero() {
				untimed++
			}
			a.traceMessage(ctx, msg)
			ctx.src, ctx.dst, ctx.hasTrans = netip.AddrPort{}, netip.AddrPort{}, false
		}
		msg, bodyLen, want, inBody = nil, 0, -1, false
	}
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case looksLikeSIP([]byte(strings.TrimLeft(line, " \t"))):
			flush()
			msg = append(msg, strings.TrimLeft(line, " \t"))
		case len(msg) > 0 && !inBody:
			if strings.TrimSpace(line) == "" {
				inBody = true
				want = contentLength(msg)
				if want <= 0 {
					flush()
				} else {
					msg = append(msg, "")
				}
				continue
			}
			msg = append(msg, line)
		case len(msg) > 0 && inBody:
			if strings.TrimSpace(line) == "" || a.contextLine(line, &traceContext{}) {
				flush()
				a.contextLine(line, &ctx)
				continue
			}
			msg = append(msg, line)
			bodyLen += len(line) + 2
			if want > 0 && bodyLen >= want {
				flush()
			}
		default:
			a.contextLine(line, &ctx)
		}
	}
	flush()
	if untimed > 0 {
		a.traceNote = fmt.Sprintf("%d messages of the trace came before any timestamp: they are dated at the zero time", untimed)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("audit: %s: a line longer than %d bytes: not a SIP trace: %w", path, maxTraceLine, ErrNotCapture)
		}
		return fmt.Errorf("audit: reading %s: %w", path, err)
	}
	return nil
}

// contentLength finds the Content-Length (or l) header among a message's
// lines; -1 when absent.
func contentLength(lines []string) int {
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "content-length" || k == "l" {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return -1
}

// contextLine reads addresses, transport and time from a line between
// messages into ctx, and reports whether it found any.
func (a *analyzer) contextLine(line string, ctx *traceContext) bool {
	found := false
	if m := traceTime.FindStringSubmatch(line); m != nil {
		layout := "2006-01-02 15:04:05"
		s := fmt.Sprintf("%s-%s-%s %s:%s:%s", m[1], m[2], m[3], m[4], m[5], m[6])
		if m[7] != "" {
			layout += ".999999999"
			s += m[7]
		}
		if t, err := time.Parse(layout, s); err == nil {
			ctx.t, found = t.UTC(), true
			if t.After(a.last) {
				a.last = t
			}
		}
	}
	if before, after, ok := strings.Cut(line, " -> "); ok {
		lf, rf := strings.Fields(before), strings.Fields(after)
		if len(lf) > 0 && len(rf) > 0 {
			src, err1 := netip.ParseAddrPort(strings.TrimSuffix(lf[len(lf)-1], ":"))
			dst, err2 := netip.ParseAddrPort(strings.TrimSuffix(rf[0], ":"))
			if err1 == nil && err2 == nil {
				ctx.src, ctx.dst, found = src, dst, true
				switch lf[0] {
				case "U":
					ctx.transport, ctx.hasTrans = policy.TransportUDP, true
				case "T":
					ctx.transport, ctx.hasTrans = policy.TransportTCP, true
				}
			}
		}
	}
	return found
}

// traceMessage parses one message of a trace (its lines, with "" between
// headers and body) and hands it on.
func (a *analyzer) traceMessage(ctx traceContext, lines []string) {
	text := strings.Join(lines, "\r\n") + "\r\n"
	if !slices.Contains(lines, "") {
		text += "\r\n"
	}
	m, _, err := parseSIP([]byte(text), false)
	if err != nil {
		a.sipErrors++
		return
	}
	a.packets++
	tr := policy.TransportUDP
	if ctx.hasTrans {
		tr = ctx.transport
	} else if viaTransport(m.Via) == "tcp" {
		tr = policy.TransportTCP
	}
	a.sip(ctx.t, ctx.src, ctx.dst, tr, m)
}
