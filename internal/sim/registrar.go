package sim

// A peer as a carrier's registrar: REGISTER challenged with digest
// (RFC 3261 sections 10.3 and 22, qop=auth), bindings granted a lifetime,
// 423 below a minimum, and every REGISTER kept for the test to look at.

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Registrar makes a peer a registrar.
type Registrar struct {
	// Credentials are the only ones accepted.
	Credentials Credentials
	// Grant is the longest lifetime granted (a shorter one asked is
	// granted as asked).
	Grant time.Duration
	// MinExpires, when set, answers 423 with it to a shorter lifetime.
	MinExpires time.Duration
	// Proxy challenges with 407 and Proxy-Authenticate instead of 401.
	Proxy bool
}

// Register is one REGISTER the registrar received and what it answered.
type Register struct {
	At time.Time
	// Expires is the lifetime asked (the Expires header).
	Expires int
	// Contact is the Contact URI, as written.
	Contact string
	// Authorization is whether it carried credentials.
	Authorization bool
	// Status is the registrar's answer; Granted the lifetime a 200 gave.
	Status  int
	Granted int
}

// registrar is a peer's registrar state.
type registrar struct {
	cfg    Registrar
	mu     sync.Mutex
	nonces map[string]bool
	seen   []Register
	// binding is the contact registered, and until when ("" when none).
	binding string
	until   time.Time
}

// Registers returns the REGISTERs received so far, in order.
func (p *Peer) Registers() []Register {
	r := p.reg
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Register(nil), r.seen...)
}

// Binding returns the contact registered and not yet expired.
func (p *Peer) Binding() (contact string, ok bool) {
	r := p.reg
	if r == nil {
		return "", false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.binding == "" || time.Now().After(r.until) {
		return "", false
	}
	return r.binding, true
}

// onRegister answers a REGISTER.
func (p *Peer) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r := p.reg
	rec := Register{At: time.Now(), Expires: -1}
	if h := req.GetHeader("Expires"); h != nil {
		rec.Expires, _ = strconv.Atoi(h.Value())
	}
	c := req.Contact()
	if c != nil {
		rec.Contact = c.Address.String()
	}
	hdr := "Authorization"
	if r.cfg.Proxy {
		hdr = "Proxy-Authorization"
	}
	h := req.GetHeader(hdr)
	rec.Authorization = h != nil
	res := r.answer(req, h, c, &rec)
	rec.Status = res.StatusCode
	r.mu.Lock()
	r.seen = append(r.seen, rec)
	r.mu.Unlock()
	_ = tx.Respond(res)
}

// answer decides the response to a REGISTER whose credentials are h.
func (r *registrar) answer(req *sip.Request, h sip.Header, c *sip.ContactHeader, rec *Register) *sip.Response {
	if h == nil || !r.verify(req, h.Value()) {
		if h != nil {
			return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
		}
		return r.challenge(req)
	}
	if c == nil || rec.Expires < 0 {
		return sip.NewResponseFromRequest(req, 400, "Bad Request", nil)
	}
	asked := time.Duration(rec.Expires) * time.Second
	if asked > 0 && asked < r.cfg.MinExpires {
		res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(int(r.cfg.MinExpires/time.Second))))
		return res
	}
	grant := min(asked, r.cfg.Grant)
	r.mu.Lock()
	if grant == 0 {
		r.binding = ""
	} else {
		r.binding, r.until = c.Address.String(), time.Now().Add(grant)
	}
	r.mu.Unlock()
	rec.Granted = int(grant / time.Second)
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if grant > 0 {
		bound := c.Clone()
		bound.Params = sip.NewParams()
		bound.Params.Add("expires", strconv.Itoa(rec.Granted))
		res.AppendHeader(bound)
	}
	return res
}

// challenge answers 401 (or 407) with a fresh nonce.
func (r *registrar) challenge(req *sip.Request) *sip.Response {
	var nb [12]byte
	_, _ = rand.Read(nb[:])
	nonce := fmt.Sprintf("%x", nb)
	r.mu.Lock()
	r.nonces[nonce] = true
	r.mu.Unlock()
	chal := &digest.Challenge{Realm: simRealm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}}
	if r.cfg.Proxy {
		res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", chal.String()))
		return res
	}
	res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	res.AppendHeader(sip.NewHeader("WWW-Authenticate", chal.String()))
	return res
}

// verify checks credentials against a nonce this registrar issued (each
// used once), the Request-URI and the password.
func (r *registrar) verify(req *sip.Request, value string) bool {
	cred, err := digest.ParseCredentials(value)
	if err != nil || cred.Username != r.cfg.Credentials.Username || cred.Realm != simRealm {
		return false
	}
	if cred.URI != req.Recipient.Addr() && cred.URI != req.Recipient.String() {
		return false
	}
	r.mu.Lock()
	issued := r.nonces[cred.Nonce]
	delete(r.nonces, cred.Nonce)
	r.mu.Unlock()
	if !issued || cred.QOP != "auth" || cred.Cnonce == "" {
		return false
	}
	exp, err := digest.Digest(&digest.Challenge{Realm: simRealm, Nonce: cred.Nonce, Algorithm: cred.Algorithm, QOP: []string{"auth"}},
		digest.Options{Method: "REGISTER", URI: cred.URI, Username: r.cfg.Credentials.Username,
			Password: r.cfg.Credentials.Password, Cnonce: cred.Cnonce, Count: cred.Nc})
	return err == nil && exp.Response == cred.Response
}
