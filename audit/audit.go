package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/compliance/report"
	"github.com/parapet-sbc/parapet/policy"
)

// Zone tells audit how to judge legs that touch an address.
type Zone struct {
	// Policy is what policy.Evaluate and policy.LegFindings judge against.
	// Its Peers (prefixes) put a leg whose far end is in them in the zone.
	Policy policy.Zone
	// Listen lists parapet-style listener addresses in this zone: a leg to
	// or from one is in the zone. An unspecified address (0.0.0.0, ::)
	// matches any address on its port.
	Listen []netip.AddrPort
}

// Options configure Analyze.
type Options struct {
	// Zones are tried in order for each leg (Listen first, then Peers);
	// a leg no zone claims, and every leg when Zones is empty, is judged
	// in DefaultZone.
	Zones []Zone
	// Pseudonymizer hashes numbers and Call-IDs; nil means a random key
	// for this run, which Source.Notes then says (tokens cannot be linked
	// to any other report).
	Pseudonymizer *compliance.Pseudonymizer
	// Progress, when set, is called with the bytes read of the file so
	// far and its size, about every megabyte and once at the end.
	Progress func(done, total int64)
}

// Limits of what one Analyze keeps in memory. Beyond them, the packets of
// new dialogs, connections and flows are not examined, and Source.Notes
// says how many.
const (
	MaxDialogs     = 100_000 // SIP dialogs tracked at once
	MaxConnections = 100_000 // TCP connections tracked at once
	MaxFlows       = 100_000 // UDP media flows tracked
	// MaxSampledFlows bounds the open flows whose payloads are sampled for
	// classification by packets; flows beyond it are classified by SDP only.
	MaxSampledFlows = 10_000
	// MaxListed bounds Capture.Handshakes and Capture.Flows each.
	MaxListed = 10_000
)

// ErrTruncated is wrapped by Analyze's error when the capture ends in the
// middle of a packet or block: the records of what was read before have
// been emitted.
var ErrTruncated = errors.New("capture truncated")

// ErrNotCapture is wrapped by Analyze's error when the file is neither a
// pcap, a pcapng nor a SIP text trace.
var ErrNotCapture = errors.New("not a pcap, pcapng or SIP text trace")

// DefaultZone is the zone every leg is judged in when Options.Zones claims
// none: named "external", SIP over TLS 1.2 or later required, SRTP
// required (SDES or DTLS-SRTP, the default suites), enforce mode, every
// source admitted. Peer certificates are not required to verify: a capture
// shows a certificate but not the trust anchors it should chain to.
func DefaultZone() Zone {
	return Zone{Policy: policy.Zone{
		Name:        "external",
		Signaling:   policy.RequirementRequire,
		MinTLS:      policy.VersionTLS12,
		SRTP:        policy.RequirementRequire,
		KeyExchange: []policy.KeyExchange{policy.KeyExchangeSDES, policy.KeyExchangeDTLS},
		Suites:      append([]policy.Suite(nil), policy.DefaultSuites...),
		Peers:       []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
		Mode:        policy.ModeEnforce,
	}}
}

// Analyze reads one capture (pcap, pcapng, or a SIP text trace, told apart
// by content), emits one compliance.Record per judged dialog or TLS
// connection (and one per refused TLS handshake) via emit, and returns the
// source summary and the capture detail.
//
// The records carry no Prev or Hash: they are not a log. A truncated or
// corrupt capture still gives the records, summary and detail of what was
// read, with an error saying where reading stopped (wrapping ErrTruncated
// when the file ends mid-packet); the summary's Notes say it too.
func Analyze(path string, opts Options, emit func(*compliance.Record)) (report.Source, *report.Capture, error) {
	src := report.Source{Name: path, Files: []string{path}}
	f, err := os.Open(path)
	if err != nil {
		return src, nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var size int64
	if st, err := f.Stat(); err == nil {
		size = st.Size()
	}
	a := newAnalyzer(opts, emit)
	if opts.Pseudonymizer == nil {
		src.Notes = append(src.Notes, "caller, callee and Call-ID tokens use a random key for this run: they match no other report")
	}
	h := sha256.New()
	cr := &countingReader{r: f, h: h, total: size, progress: opts.Progress}
	br := bufio.NewReaderSize(cr, 64<<10)
	readErr := a.read(br, path)
	a.finish()
	// Hash what is left unread (a reader that stopped early) so SHA256
	// always covers the whole file.
	if _, err := io.Copy(io.Discard, cr); err != nil && readErr == nil {
		readErr = fmt.Errorf("audit: reading %s: %w", path, err)
	}
	cr.report(true)
	src.SHA256 = hex.EncodeToString(h.Sum(nil))
	src.Records, src.Calls = a.records, a.calls
	src.Notes = append(src.Notes, a.notes()...)
	if readErr != nil {
		src.Notes = append(src.Notes, readErr.Error())
	}
	return src, a.capture(), readErr
}

// read tells the format apart and reads it.
func (a *analyzer) read(br *bufio.Reader, path string) error {
	head, _ := br.Peek(4)
	switch {
	case len(head) == 4 && isPcapMagic(head):
		return a.readPcap(br, path, false)
	case len(head) == 4 && bytes.Equal(head, []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		return a.readPcap(br, path, true)
	}
	peek, _ := br.Peek(64 << 10)
	if bytes.Contains(peek, []byte("SIP/2.0")) && textLike(peek) {
		return a.readTrace(br, path)
	}
	return fmt.Errorf("audit: %s: %w", path, ErrNotCapture)
}

func isPcapMagic(b []byte) bool {
	for _, m := range [][]byte{{0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, {0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}} {
		if bytes.Equal(b, m) {
			return true
		}
	}
	return false
}

// textLike reports whether b is mostly text (a SIP trace, not a binary file
// that happens to hold "SIP/2.0").
func textLike(b []byte) bool {
	bad := 0
	for _, c := range b {
		if c < 0x09 || (c > 0x0d && c < 0x20) {
			bad++
		}
	}
	return bad*100 <= len(b)
}

// countingReader counts and hashes what is read, and reports progress.
type countingReader struct {
	r        io.Reader
	h        hash.Hash
	n, last  int64
	total    int64
	progress func(done, total int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	c.report(false)
	return n, err
}

func (c *countingReader) report(final bool) {
	if c.progress == nil || (!final && c.n-c.last < 1<<20) {
		return
	}
	c.last = c.n
	c.progress(c.n, max(c.total, c.n))
}

// analyzer holds the state of one Analyze: per dialog, per connection and
// per flow, each bounded.
type analyzer struct {
	zones  []Zone
	def    Zone
	pseudo *compliance.Pseudonymizer
	emit   func(*compliance.Record)

	seq            uint64
	records, calls int

	packets, undecoded uint64
	snapCut            uint64
	fragments          uint64

	dialogs   map[string]*dialog
	nDialogs  int
	dialogsIn int // dialogs seen (Capture.Dialogs)

	conns  map[connKey]*tcpConn
	nTLS   int
	tcpGap uint64

	flows       map[flowKey]*mediaFlow
	flowReports []report.Flow // flows retired (idle, or at the end)
	sampled     int           // open flows with a sample
	sdpIndex    map[netip.AddrPort]*sdpRef
	// byHosts holds the flows no SDP named between two hosts that have a
	// TLS connection open (tlsPairs counts them), for judging its media.
	byHosts  map[[2]netip.Addr][]*mediaFlow
	tlsPairs map[[2]netip.Addr]int

	handshakes []report.Handshake
	omitted    int    // handshakes and flows not listed (MaxListed)
	untracked  uint64 // packets of dialogs, connections and flows beyond the limits
	sipErrors  uint64
	textTLS    int
	inTrace    bool   // reading a text trace
	traceNote  string // what the trace lacked
	last       time.Time
}

func newAnalyzer(opts Options, emit func(*compliance.Record)) *analyzer {
	p := opts.Pseudonymizer
	if p == nil {
		key := make([]byte, 32)
		rand.Read(key)
		p = compliance.NewPseudonymizer(key)
	}
	if emit == nil {
		emit = func(*compliance.Record) {}
	}
	return &analyzer{
		zones: opts.Zones, def: DefaultZone(), pseudo: p, emit: emit,
		dialogs:  make(map[string]*dialog),
		conns:    make(map[connKey]*tcpConn),
		flows:    make(map[flowKey]*mediaFlow),
		sdpIndex: make(map[netip.AddrPort]*sdpRef),
		byHosts:  make(map[[2]netip.Addr][]*mediaFlow),
		tlsPairs: make(map[[2]netip.Addr]int),
	}
}

// zoneFor picks the zone of a leg between from (the INVITE's or
// ClientHello's sender) and to: the first zone listing either address
// among its listeners, else the first whose peers hold from, else
// DefaultZone.
func (a *analyzer) zoneFor(from, to netip.AddrPort) *Zone {
	for i := range a.zones {
		z := &a.zones[i]
		for _, l := range z.Listen {
			if listenMatch(l, to) || listenMatch(l, from) {
				return z
			}
		}
	}
	for i := range a.zones {
		if z := &a.zones[i]; from.IsValid() && z.Policy.AdmitsSource(from.Addr()) {
			return z
		}
	}
	return &a.def
}

func listenMatch(l, ap netip.AddrPort) bool {
	if !ap.IsValid() || l.Port() != ap.Port() {
		return false
	}
	return l.Addr().IsUnspecified() || l.Addr().Unmap() == ap.Addr().Unmap()
}

// record stamps and emits one record.
func (a *analyzer) record(r *compliance.Record) {
	a.seq++
	r.V, r.Seq = compliance.SchemaVersion, a.seq
	a.records++
	if r.Type == compliance.TypeCall {
		a.calls++
	}
	a.emit(r)
}

// Idle times after which state is let go of, in capture time: a media
// flow is listed and freed, a TCP connection judged as if it had closed.
const (
	flowIdle   = time.Minute
	connIdle   = 5 * time.Minute
	sweepEvery = 4096 // packets between sweeps
)

// sweep lets go of idle flows and connections, so a long capture streams
// in bounded memory.
func (a *analyzer) sweep(now time.Time) {
	for _, f := range a.flows {
		if now.Sub(f.last) > flowIdle {
			a.retire(f)
		}
	}
	for _, c := range a.conns {
		if now.Sub(c.last) > connIdle {
			a.closeConn(c)
		}
	}
}

// finish judges what is still open at the end of the capture: connections
// first (their media is judged from the flows still held), then flows,
// then dialogs.
func (a *analyzer) finish() {
	for _, c := range byFirst(a.conns, func(x, y *tcpConn) int { return x.first.Compare(y.first) }) {
		a.closeConn(c)
	}
	for _, f := range byFirst(a.flows, func(x, y *mediaFlow) int { return x.first.Compare(y.first) }) {
		a.retire(f)
	}
	for _, d := range byFirst(a.dialogs, func(x, y *dialog) int { return cmp.Compare(x.n, y.n) }) {
		a.endDialog(d)
	}
}

// byFirst lists a table's entries in order (when they began), so that
// what is judged at the end is judged in a fixed order.
func byFirst[K comparable, V any](m map[K]V, order func(x, y V) int) []V {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, order)
	return out
}

// notes say what the capture summary cannot: packets cut, gaps, errors.
func (a *analyzer) notes() []string {
	var out []string
	if a.snapCut > 0 {
		out = append(out, fmt.Sprintf("%d packets were cut short by the capture's snap length: their SIP or TLS may be incomplete", a.snapCut))
	}
	if a.fragments > 0 {
		out = append(out, fmt.Sprintf("%d IP fragments were not reassembled", a.fragments))
	}
	if a.tcpGap > 0 {
		out = append(out, fmt.Sprintf("%d TCP segments were missing from the capture: the streams around them were read from the next message on", a.tcpGap))
	}
	if a.sipErrors > 0 {
		out = append(out, fmt.Sprintf("%d SIP messages could not be parsed and were skipped", a.sipErrors))
	}
	if a.textTLS > 0 {
		out = append(out, fmt.Sprintf("%d legs of the trace went over TLS, whose version a text trace does not show: they are judged as not proven to run TLS 1.2 or later", a.textTLS))
	}
	if a.traceNote != "" {
		out = append(out, a.traceNote)
	}
	if a.untracked > 0 {
		out = append(out, fmt.Sprintf("%d packets or SIP messages were not examined: audit tracks at most %d dialogs, %d connections and %d media flows at once", a.untracked, MaxDialogs, MaxConnections, MaxFlows))
	}
	if a.omitted > 0 {
		out = append(out, fmt.Sprintf("%d TLS handshakes and media flows beyond the first %d of each are not listed", a.omitted, MaxListed))
	}
	return out
}

// capture builds the Capture section.
func (a *analyzer) capture() *report.Capture {
	c := &report.Capture{Packets: a.packets, Undecoded: a.undecoded, Dialogs: a.dialogsIn,
		Handshakes: a.handshakes, Omitted: a.omitted}
	if c.Handshakes == nil {
		c.Handshakes = []report.Handshake{}
	}
	c.Flows = a.flowReports
	if c.Flows == nil {
		c.Flows = []report.Flow{}
	}
	return c
}
