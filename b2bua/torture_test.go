package b2bua_test

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

// The RFC 4475 torture messages, each sent to a running parapet over UDP
// and over TCP, get the response RFC 3261 asks for (testdata/rfc4475/
// index.tsv says which), and parapet goes on serving. Every exchange has a
// socket or connection of its own, and all run at once: the whole takes a
// few seconds (49 messages, twice).
func TestTortureCorpus(t *testing.T) {
	l := newLab(t, labOptions{carrierAnswer: sim.Answer{Status: 486}})
	cases, msgs := loadCorpus(t)
	addrs := l.srv.Addrs("pbx")
	var wg sync.WaitGroup
	got := make([][2]string, len(cases))
	for i, c := range cases {
		for j, tr := range []string{"udp", "tcp"} {
			to, want := addrs[policy.TransportUDP].String(), c.udp
			if tr == "tcp" {
				to, want = addrs[policy.TransportTCP].String(), c.tcp
			}
			if want == "-" {
				got[i][j] = "-"
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, err := tortureExchange(tr, to, c, want, msgs[c.name])
				got[i][j] = status
				if err != nil {
					t.Errorf("%s (RFC 4475 section %s) over %s: %v", c.name, c.section, tr, err)
				}
			}()
		}
	}
	wg.Wait()
	for i, c := range cases {
		t.Logf("%-10s %-8s udp %-4s tcp %s", c.name, c.section, got[i][0], got[i][1])
	}
	// Still serving: an ordinary call goes through.
	_, err := l.callOut(ctxT(t), sim.CallOptions{})
	wantRejected(t, err, 486)
}

// tortureExchange sends one message and checks what comes back against
// want: a status, "none", or alternatives joined by "|". It returns what
// came back.
func tortureExchange(tr, to string, c tortureCase, want string, msg []byte) (string, error) {
	p, err := dialRaw(tr, to)
	if err != nil {
		return "", err
	}
	defer p.conn.Close()
	if tr == "udp" {
		msg = sentBy(msg, p.local)
	}
	if _, err := p.conn.Write(msg); err != nil {
		return "", err
	}
	id := keyOf(msg)
	var res *sip.Response
	if want == "none" {
		res = p.quiet(id, "probe-"+c.name)
	} else {
		res = p.final(id)
	}
	status := "none"
	if res != nil {
		status = strconv.Itoa(res.StatusCode)
		if req, err := sip.ParseMessage(msg); err == nil && res.StatusCode >= 300 {
			if r, ok := req.(*sip.Request); ok && r.IsInvite() && r.To() != nil {
				p.conn.Write(ackFor(r, res))
			}
		}
	}
	if !wanted(want, status) {
		detail := ""
		if res != nil {
			detail = "\n" + res.String()
		}
		return status, fmt.Errorf("got %s, want %s (%s)%s", status, want, c.why, detail)
	}
	return status, extras(c.name, res)
}

// wanted reports whether status is one of want's alternatives.
func wanted(want, status string) bool {
	for _, w := range strings.Split(want, "|") {
		if w == status {
			return true
		}
	}
	return false
}

// sentBy puts local as the sent-by of msg's first Via, wherever the
// message had it: over UDP parapet answers to the address in the Via
// (RFC 3261 section 18.2.2), which the RFC's messages give as hosts of
// example.com and 192.0.2.0/24. Nothing else of the message changes.
func sentBy(msg []byte, local string) []byte {
	m := viaSentBy.FindSubmatchIndex(msg)
	if m == nil {
		return msg
	}
	out := append([]byte{}, msg[:m[2]]...)
	out = append(out, local...)
	return append(out, msg[m[3]:]...)
}

// viaSentBy finds the sent-by of a message's first Via, whitespace and
// folding allowed where RFC 3261 allows them.
var viaSentBy = regexp.MustCompile(`(?mi)^(?:via|v)[ \t]*:\s*SIP\s*/\s*[0-9.]+\s*/\s*[A-Za-z]+\s+([^;,\s]+)`)

// extras checks what a status asks of its headers: 405 says Allow, 420
// Unsupported (every option tag refused), 415 Accept.
func extras(name string, res *sip.Response) error {
	if res == nil {
		return nil
	}
	need := map[int]string{405: "Allow", 420: "Unsupported", 415: "Accept"}[res.StatusCode]
	if need != "" && res.GetHeader(need) == nil {
		return fmt.Errorf("%d without %s:\n%s", res.StatusCode, need, res)
	}
	if name == "bext01" && res.StatusCode == 420 {
		got := res.GetHeader("Unsupported").Value()
		for _, tag := range []string{"nothingSupportsThis", "nothingSupportsThisEither", "noProxiesSupportThis", "norDoAnyProxiesSupportThis"} {
			if !strings.Contains(got, tag) {
				return fmt.Errorf("Unsupported %q does not list %s", got, tag)
			}
		}
	}
	return nil
}

// reqKey tells the responses to a request: by the branch of its first
// Via, or else by its Call-ID (the first, when it has several).
type reqKey struct{ branch, callID string }

var callIDLine = regexp.MustCompile(`(?mi)^(?:call-id|i)[ \t]*:[ \t]*(\S+)`)

func keyOf(msg []byte) reqKey {
	var k reqKey
	if m := callIDLine.FindSubmatch(msg); m != nil {
		k.callID = string(m[1])
	}
	if m, err := sip.ParseMessage(msg); err == nil {
		if r, ok := m.(*sip.Request); ok && r.Via() != nil {
			k.branch, _ = r.Via().Params.Get("branch")
		}
	}
	return k
}

func (k reqKey) answers(res *sip.Response) bool {
	if v := res.Via(); v != nil && k.branch != "" {
		if b, _ := v.Params.Get("branch"); b == k.branch {
			return true
		}
	}
	return k.callID != "" && res.CallID() != nil && res.CallID().Value() == k.callID
}

// ackFor acknowledges a non-2xx final response to an INVITE (RFC 3261
// section 17.1.1.3), so that parapet stops retransmitting it.
func ackFor(req *sip.Request, res *sip.Response) []byte {
	return []byte(strings.Join([]string{
		fmt.Sprintf("ACK %s SIP/2.0", req.Recipient.String()),
		"Via: " + req.Via().Value(),
		"Max-Forwards: 70",
		"From: " + req.From().Value(),
		"To: " + res.To().Value(),
		"Call-ID: " + req.CallID().Value(),
		fmt.Sprintf("CSeq: %d ACK", req.CSeq().SeqNo),
		"Content-Length: 0", "", ""}, "\r\n"))
}

// rawSIP writes raw bytes to parapet over UDP or TCP and reads its
// responses.
type rawSIP struct {
	tr    string
	conn  net.Conn
	local string
	got   chan *sip.Response // closed when the connection ends
}

func dialRaw(tr, to string) (*rawSIP, error) {
	c, err := net.Dial(tr, to)
	if err != nil {
		return nil, err
	}
	p := &rawSIP{tr: tr, conn: c, local: c.LocalAddr().String(), got: make(chan *sip.Response, 16)}
	go p.read()
	return p, nil
}

// echoParser reads parapet's responses, which echo the From and To of
// the request, malformed or not: it keeps them as text.
func echoParser() *sip.Parser {
	m := map[string]sip.HeaderParser{}
	for name, p := range sip.DefaultHeadersParser() {
		switch name {
		case "from", "f", "to", "t":
		default:
			m[name] = p
		}
	}
	return sip.NewParser(sip.WithHeadersParsers(m))
}

// statusOnly is a response sipgo cannot parse (it echoes a malformed
// request's headers, an overlarge CSeq say) as its status and Call-ID,
// or nil when data is no response.
func statusOnly(data []byte) *sip.Response {
	m := statusLine.FindSubmatch(data)
	if m == nil {
		return nil
	}
	code, _ := strconv.Atoi(string(m[1]))
	res := sip.NewResponse(code, "")
	if id := callIDLine.FindSubmatch(data); id != nil {
		cid := sip.CallIDHeader(id[1])
		res.AppendHeader(&cid)
	}
	return res
}

var statusLine = regexp.MustCompile(`^SIP/2\.0 ([1-6][0-9][0-9]) `)

func (p *rawSIP) read() {
	defer close(p.got)
	buf := make([]byte, 65535)
	parser := echoParser()
	stream := parser.NewSIPStream()
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		deliver := func(m sip.Message) {
			if res, ok := m.(*sip.Response); ok {
				p.got <- res
			}
		}
		if p.tr == "udp" {
			if m, err := parser.ParseSIP(buf[:n]); err == nil {
				deliver(m)
			} else if res := statusOnly(buf[:n]); res != nil {
				deliver(res)
			}
			continue
		}
		if err := stream.ParseSIPStream(buf[:n], deliver); err != nil && !errors.Is(err, sip.ErrParseSipPartial) {
			return
		}
	}
}

// final waits (at most 10 s: the race detector and other packages'
// tests, a flood among them, share the machine) for the final response
// to the request id tells.
func (p *rawSIP) final(id reqKey) *sip.Response {
	deadline := time.After(10 * time.Second)
	for {
		select {
		case res, ok := <-p.got:
			if !ok {
				return nil
			}
			if res.StatusCode >= 200 && id.answers(res) {
				return res
			}
		case <-deadline:
			return nil
		}
	}
}

// quiet checks that nothing answers the request id tells: it sends an
// OPTIONS after it on the same socket or connection and returns any
// response to it that comes before the OPTIONS' 200. parapet reads a
// socket or connection in order, so the 200 means the message before it
// was read and dropped. A connection parapet closes, having found no
// message boundary, answered nothing; one that waits for the rest of a
// message (a Content-Length past what was sent) is given 2 s.
func (p *rawSIP) quiet(id reqKey, probe string) *sip.Response {
	opt := strings.Join([]string{
		"OPTIONS sip:probe@127.0.0.1 SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/%s %s;branch=z9hG4bK%s", strings.ToUpper(p.tr), p.local, probe),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:probe@%s>;tag=%s", p.local, probe),
		"To: <sip:probe@127.0.0.1>",
		"Call-ID: " + probe,
		"CSeq: 1 OPTIONS", "Content-Length: 0", "", ""}, "\r\n")
	p.conn.Write([]byte(opt)) // the connection may be closed already
	deadline := time.After(2 * time.Second)
	for {
		select {
		case res, ok := <-p.got:
			if !ok {
				return nil
			}
			if id := res.CallID(); id != nil && id.Value() == probe {
				return nil
			}
			if id.answers(res) {
				return res
			}
		case <-deadline:
			return nil
		}
	}
}
