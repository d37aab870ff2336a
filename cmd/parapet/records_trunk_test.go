package main

import (
	"testing"

	"github.com/parapet-sbc/parapet/compliance"
)

// A trunk_registration event matches -route by its route, and its table row
// names the route and the new state; other connection events have no route
// and do not match one.
func TestRecordsTrunkRegistration(t *testing.T) {
	trunk := &compliance.Record{Type: compliance.TypeConnection, Time: recT0, Conn: &compliance.ConnEvent{
		Event: compliance.EventTrunkRegistration, Zone: "carrier", Transport: "udp", Remote: "198.51.100.7:5060",
		Method: "REGISTER", SIPStatus: 401, Route: "outbound", State: "failed"}}
	tlsRefused := &compliance.Record{Type: compliance.TypeConnection, Time: recT0, Conn: &compliance.ConnEvent{
		Event: compliance.EventTLSRefused, Zone: "carrier", Transport: "tls", Remote: "203.0.113.7:40112"}}
	for _, tc := range []struct {
		name   string
		routes []string
		r      *compliance.Record
		want   bool
	}{
		{"its route", []string{"outbound"}, trunk, true},
		{"another route", []string{"inbound"}, trunk, false},
		{"an event without a route", []string{"outbound"}, tlsRefused, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &recordFilter{routes: set(tc.routes)}
			if got := f.match(tc.r); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
	row := tableFields(trunk)
	if row[6] != "outbound" || row[9] != "REGISTER failed" {
		t.Errorf("table row %q: want route outbound and REGISTER failed", row)
	}
	if row := tableFields(tlsRefused); row[6] != "-" || row[9] != "-" {
		t.Errorf("table row %q: want no route and no method", row)
	}
}
