package sim

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// PathRegistrar is a registrar on the PBX side (users registering through parapet, RFC 3327): it challenges every
// REGISTER without valid credentials with 401 and keeps, per address of
// record, the contact and the Path (RFC 3327) of the last one it took.
type PathRegistrar struct {
	// Addr is where the registrar listens (UDP).
	Addr     netip.AddrPort
	user     string
	password string

	mu        sync.Mutex
	contact   map[string]string // AOR user → contact URI
	path      map[string]string // AOR user → Path header value
	registers int
	require   []string // the Require headers of the REGISTERs taken
	noPath    bool     // answer 420 to Require: path
	flowTimer int      // Flow-Timer of an outbound 2xx (RFC 5626 section 6); 0: none
}

// NewPathRegistrar starts a registrar on 127.0.0.1 (a free UDP port) that
// accepts user with password; it stops when t ends.
func NewPathRegistrar(t testing.TB, user, password string) *PathRegistrar {
	t.Helper()
	r := &PathRegistrar{user: user, password: password, contact: map[string]string{}, path: map[string]string{}}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("sim-registrar"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(r.onRegister)
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r.Addr = c.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() { _ = srv.ServeUDP(c) }()
	t.Cleanup(func() { c.Close(); ua.Close() })
	return r
}

// Realm is the registrar's digest realm.
const Realm = "pbx.test"

func (r *PathRegistrar) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r.mu.Lock()
	r.registers++
	noPath := r.noPath
	r.mu.Unlock()
	if noPath && req.GetHeader("Require") != nil {
		res := sip.NewResponseFromRequest(req, 420, "Bad Extension", nil)
		res.AppendHeader(sip.NewHeader("Unsupported", "path"))
		_ = tx.Respond(res)
		return
	}
	h := req.GetHeader("Authorization")
	if h == nil || !r.valid(h.Value()) {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		chal := digest.Challenge{Realm: Realm, Nonce: fmt.Sprintf("n%d", time.Now().UnixNano()), Algorithm: "MD5"}
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
		_ = tx.Respond(res)
		return
	}
	aor := req.To().Address.User
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	r.mu.Lock()
	ct := req.Contact()
	if exp := req.GetHeader("Expires"); exp != nil && strings.TrimSpace(exp.Value()) == "0" {
		delete(r.contact, aor)
	} else {
		r.contact[aor] = ct.Address.String()
		c := ct.Clone()
		c.Params = sip.NewParams()
		c.Params.Add("expires", "60") // less than asked: the registrar's grant rules
		res.AppendHeader(c)
	}
	if p := req.GetHeader("Path"); p != nil {
		r.path[aor] = p.Value()
		res.AppendHeader(sip.NewHeader("Path", p.Value()))
		// Outbound (RFC 5626 section 6): the first hop said ob, and the
		// contact names its instance and reg-id.
		if ct != nil && ct.Params.Has("reg-id") && strings.Contains(p.Value(), ";ob") {
			res.AppendHeader(sip.NewHeader("Require", "outbound"))
			if r.flowTimer > 0 {
				res.AppendHeader(sip.NewHeader("Flow-Timer", strconv.Itoa(r.flowTimer)))
			}
		}
	}
	if q := req.GetHeader("Require"); q != nil {
		r.require = append(r.require, q.Value())
	}
	r.mu.Unlock()
	_ = tx.Respond(res)
}

// valid checks a digest answer (RFC 2617 without qop, as the challenge
// asks).
func (r *PathRegistrar) valid(auth string) bool {
	cred, err := digest.ParseCredentials(auth)
	if err != nil || cred.Username != r.user {
		return false
	}
	want, err := digest.Digest(&digest.Challenge{Realm: cred.Realm, Nonce: cred.Nonce, Algorithm: "MD5"},
		digest.Options{Method: "REGISTER", URI: cred.URI, Username: r.user, Password: r.password})
	return err == nil && want.Response == cred.Response
}

// Binding returns the contact and Path the registrar keeps for the
// address of record user aor.
func (r *PathRegistrar) Binding(aor string) (contact, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.contact[aor], r.path[aor]
}

// Requires returns the Require headers of the REGISTERs the registrar took.
func (r *PathRegistrar) Requires() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.require...)
}

// RefusePath makes the registrar answer 420 to a REGISTER that requires
// path, as a registrar without RFC 3327 support does.
func (r *PathRegistrar) RefusePath() {
	r.mu.Lock()
	r.noPath = true
	r.mu.Unlock()
}

// SetFlowTimer makes the registrar ask outbound user agents for a
// keep-alive every secs seconds (Flow-Timer, RFC 5626 section 6).
func (r *PathRegistrar) SetFlowTimer(secs int) {
	r.mu.Lock()
	r.flowTimer = secs
	r.mu.Unlock()
}
