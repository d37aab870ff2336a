package sim

// A peer's self-signed DTLS certificate, a=fingerprint values (RFC 8122)
// and the DTLS-SRTP attributes of an SDP (a=fingerprint, a=setup, a=rtcp-mux).

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// dtlsCert is a peer's self-signed certificate and its SHA-256 fingerprint.
type dtlsCert struct {
	cert tls.Certificate
	sum  []byte
}

func newDTLSCert(name string) (*dtlsCert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "sim " + name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &dtlsCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, sum: sum[:]}, nil
}

// fingerprint is the a=fingerprint value of the certificate; wrong makes
// it one that does not match (a peer whose SDP lies about its certificate).
func (c *dtlsCert) fingerprint(wrong bool) string {
	sum := bytes.Clone(c.sum)
	if wrong {
		sum[0] ^= 0xff
	}
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = strings.ToUpper(hex.EncodeToString([]byte{b}))
	}
	return "sha-256 " + strings.Join(parts, ":")
}

// Fingerprint is the a=fingerprint value (sha-256) of the peer's DTLS
// certificate, as its SDP carries it.
func (p *Peer) Fingerprint() string { return p.cert.fingerprint(false) }

// fingerprint is a parsed a=fingerprint (RFC 8122 section 5).
type fingerprint struct {
	hash  string
	value []byte
}

func parseFingerprint(v string) (fingerprint, error) {
	h, hx, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return fingerprint{}, fmt.Errorf("sim: bad fingerprint %q", v)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(hx), ":", ""))
	if err != nil || len(b) == 0 {
		return fingerprint{}, fmt.Errorf("sim: bad fingerprint %q", v)
	}
	return fingerprint{hash: strings.ToLower(h), value: b}, nil
}

func sumOf(hashName string, der []byte) ([]byte, bool) {
	var h hash.Hash
	switch hashName {
	case "sha-1":
		h = sha1.New()
	case "sha-256":
		h = sha256.New()
	case "sha-384":
		h = sha512.New384()
	case "sha-512":
		h = sha512.New()
	default:
		return nil, false
	}
	h.Write(der)
	return h.Sum(nil), true
}

func sameFingerprints(a, b []fingerprint) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].hash != b[i].hash || !bytes.Equal(a[i].value, b[i].value) {
			return false
		}
	}
	return true
}

// sdpDTLS is what an SDP says of DTLS-SRTP for a stream: a=fingerprint and
// a=setup at media level, else session level (RFC 8122, RFC 4145), and
// a=rtcp-mux.
type sdpDTLS struct {
	present bool // an a=fingerprint line
	fps     []fingerprint
	setup   string
	mux     bool
}

func readDTLS(d *sdp.SessionDescription, m *sdp.MediaDescription) (sdpDTLS, error) {
	var out sdpDTLS
	read := func(attrs []sdp.Attribute) error {
		var fps []fingerprint
		setup := ""
		for _, a := range attrs {
			switch a.Key {
			case "fingerprint":
				f, err := parseFingerprint(a.Value)
				if err != nil {
					return err
				}
				fps = append(fps, f)
			case "setup":
				if setup == "" {
					setup = strings.ToLower(strings.TrimSpace(a.Value))
				}
			}
		}
		if len(fps) > 0 && !out.present {
			out.present, out.fps = true, fps
		}
		if setup != "" && out.setup == "" {
			out.setup = setup
		}
		return nil
	}
	if err := read(m.Attributes); err != nil {
		return out, err
	}
	if err := read(d.Attributes); err != nil {
		return out, err
	}
	for _, a := range m.Attributes {
		if a.Key == "rtcp-mux" {
			out.mux = true
		}
	}
	return out, nil
}
