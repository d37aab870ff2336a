package b2bua_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/internal/sim"
	"github.com/parapet-sbc/parapet/policy"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite b2bua/testdata/golden from this run")

// The records of a fixed set of calls, with what changes from run to run
// taken out (ids, times, ports, hashes, keys' fingerprints, packet counts),
// must stay as they are: b2bua is being rebuilt around the call's phases
// and what a record says of a call must not move with it. Run with
// -update-golden after a change that means to change a record, and read
// the diff.
func TestRecordsStayTheSame(t *testing.T) {
	for _, c := range []struct {
		name string
		lab  labOptions
		call func(t *testing.T, l *lab)
	}{
		{"answered-upgraded", labOptions{}, func(t *testing.T, l *lab) {
			ctx := ctxT(t)
			caller, callee := l.connect(t, ctx)
			exchange(t, caller, callee)
			caller.Hangup(ctx)
		}},
		{"answered-sdes-inbound", labOptions{}, func(t *testing.T, l *lab) {
			ctx := ctxT(t)
			caller, err := l.callIn(ctx, sim.CallOptions{SRTP: true})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, l.pbx)
			exchange(t, caller, callee)
			callee.Hangup(ctx)
		}},
		{"rejected-plain-answer", labOptions{carrierAnswer: sim.Answer{Plain: true}}, func(t *testing.T, l *lab) {
			_, err := l.callOut(ctxT(t), sim.CallOptions{})
			wantRejected(t, err, 488)
		}},
		{"callee-busy", labOptions{carrierAnswer: sim.Answer{Status: 486}}, func(t *testing.T, l *lab) {
			_, err := l.callOut(ctxT(t), sim.CallOptions{})
			wantRejected(t, err, 486)
		}},
		{"cancelled-while-ringing", labOptions{carrierAnswer: sim.Answer{Ring: 10 * time.Second}}, func(t *testing.T, l *lab) {
			ctx, cancel := context.WithCancel(ctxT(t))
			go func() {
				// Part of the scenario: the caller gives up while it rings.
				time.Sleep(300 * time.Millisecond)
				cancel()
			}()
			if _, err := l.callOut(ctx, sim.CallOptions{}); err == nil {
				t.Fatal("a cancelled call was answered")
			}
		}},
		{"key-exchange-fallback", labOptions{
			carrierZone: func(z *policy.Zone) {
				z.KeyExchange = []policy.KeyExchange{policy.KeyExchangeDTLS, policy.KeyExchangeSDES}
			},
			carrierAnswer: sim.Answer{RejectDTLS: true},
		}, func(t *testing.T, l *lab) {
			ctx := ctxT(t)
			caller, callee := l.connect(t, ctx)
			exchange(t, caller, callee)
			caller.Hangup(ctx)
		}},
		{"carrier-not-trusted", labOptions{parapetClient: func(c *tls.Config) { c.RootCAs = nil; c.ServerName = "" }}, func(t *testing.T, l *lab) {
			_, err := l.callOut(ctxT(t), sim.CallOptions{})
			wantRejected(t, err, 503)
		}},
		// The INVITE to the PBX cannot be sent: the PBX zone listens on
		// loopback, the route's target (TEST-NET-1) is not, and the kernel
		// refuses the datagram (nothing leaves the host).
		{"invite-not-sent", labOptions{inboundHost: "192.0.2.1"}, func(t *testing.T, l *lab) {
			_, err := l.callIn(ctxT(t), sim.CallOptions{SRTP: true})
			wantRejected(t, err, 503)
		}},
		{"delayed-offer", labOptions{carrierAnswer: sim.Answer{Offer: sim.CallOptions{SRTP: true}}}, func(t *testing.T, l *lab) {
			ctx := ctxT(t)
			caller, err := l.callOut(ctx, sim.CallOptions{Delayed: true})
			if err != nil {
				t.Fatal(err)
			}
			callee := incoming(t, l.carrier)
			exchange(t, caller, callee)
			caller.Hangup(ctx)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t, c.lab)
			c.call(t, l)
			got := normalized(t, l.sink.waitCalls(t, 1)[0])
			path := filepath.Join("testdata", "golden", c.name+".json")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-golden to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the record of %s changed (got, want):\n%s", c.name, lineDiff(got, want))
			}
		})
	}
}

// lineDiff lists the lines that differ, by number.
func lineDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	var b strings.Builder
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			fmt.Fprintf(&b, "%4d: %s\n      %s\n", i+1, gl, wl)
		}
	}
	return b.String()
}

// normalized is a call record with what differs between two runs of the
// same call taken out: what is left is what the record says happened.
func normalized(t *testing.T, c *compliance.Call) []byte {
	t.Helper()
	n := *c
	n.ID, n.Caller, n.Callee, n.PolicyHash = "", "", "", ""
	n.Start, n.End, n.Answer, n.DurationMS = time.Time{}, time.Time{}, nil, nil
	n.Legs = nil
	for _, l := range c.Legs {
		l.Local, l.Remote, l.CallID, l.UserAgent = "", "", "", ""
		if l.TLS != nil {
			tl := *l.TLS
			if tl.PeerCert != nil {
				pc := *tl.PeerCert
				// The lab PKI is made afresh for each run (its CA is named by a random suffix).
				pc.SHA256, pc.AnchorSHA256, pc.NotAfter, pc.SANs, pc.Issuer = "", "", time.Time{}, nil, ""
				tl.PeerCert = &pc
			}
			l.TLS = &tl
		}
		if l.Media != nil {
			m := *l.Media
			m.PacketsIn, m.PacketsOut, m.BytesIn, m.BytesOut, m.DroppedBeforeAnswer = 0, 0, 0, 0, 0
			m.DTLSPeerCert = ""
			l.Media = &m
		}
		n.Legs = append(n.Legs, l)
	}
	b, err := json.MarshalIndent(&n, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}
