package b2bua

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
)

// The callee's asserted identities belong to legs a and b, whose dialogs
// the callee's responses formed: after a transfer on side b, leg b keeps
// what was believed from it, and the new leg b2 (now the call's c.b) and
// a transfer's a2 list none.
func TestCalleeRecordByRole(t *testing.T) {
	a := &leg{role: compliance.RoleA}
	b := &leg{role: compliance.RoleB}
	a2, b2 := &leg{role: "a2"}, &leg{role: "b2"}
	c := &Call{env: &env{}, a: a2, b: b2}
	c.identity.callee = calleeIdentity{
		believed: []nameAddr{{uri: sip.Uri{Scheme: "sip", User: "believed"}}},
		sent:     []nameAddr{{uri: sip.Uri{Scheme: "sip", User: "sent"}}},
	}
	for _, tc := range []struct {
		l    *leg
		want string
	}{{a, "[sent]"}, {b, "[believed]"}, {a2, "[]"}, {b2, "[]"}} {
		ids, _ := c.calleeRecord(tc.l)
		if got := "[" + strings.Join(ids, " ") + "]"; got != tc.want {
			t.Errorf("leg %s: %s, want %s", tc.l.role, got, tc.want)
		}
	}
}
