package topology

import "testing"

func TestSOSService(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"urn:service:sos", "urn:service:sos"},
		{"URN:Service:SOS.Police", "urn:service:sos.police"},
		{" urn:service:sos.ambulance ", "urn:service:sos.ambulance"},
		{"urn:service:sos.animal-control", "urn:service:sos.animal-control"},
		{"urn:service:sos.a.b", "urn:service:sos.a.b"},
		{"urn:service:sosx", ""},
		{"urn:service:sos.", ""},
		{"urn:service:sos..police", ""},
		{"urn:service:sos.po_lice", ""},
		{"urn:service:counseling", ""},
		{"sip:urn:service:sos@x", ""},
		{"urn:service:sos." + string(make([]byte, 60)), ""},
	} {
		in, want := tc.in, tc.want
		got, ok := SOSService(in)
		if got != want || ok != (want != "") {
			t.Errorf("SOSService(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// ServiceNumber routes a service URN by Services, the nearest listed
// parent service first, else as the first of Numbers.
func TestServiceNumber(t *testing.T) {
	e := Emergency{Numbers: []string{"112", "110", "118"},
		Services: map[string]string{"urn:service:sos.police": "110", "urn:service:sos.police.traffic": "118"}}
	for _, tc := range []struct{ service, number, mapped string }{
		{"urn:service:sos", "112", ""},
		{"urn:service:sos.fire", "112", ""},
		{"urn:service:sos.police", "110", "urn:service:sos.police"},
		{"urn:service:sos.police.traffic", "118", "urn:service:sos.police.traffic"},
		{"urn:service:sos.police.marine", "110", "urn:service:sos.police"},
		{"urn:service:sos.policex", "112", ""},
	} {
		if n, m := e.ServiceNumber(tc.service); n != tc.number || m != tc.mapped {
			t.Errorf("ServiceNumber(%s) = %q, %q; want %q, %q", tc.service, n, m, tc.number, tc.mapped)
		}
	}
	root := Emergency{Numbers: []string{"911"}, Services: map[string]string{"urn:service:sos": "933"}}
	if n, m := root.ServiceNumber("urn:service:sos.fire"); n != "933" || m != "urn:service:sos" {
		t.Errorf("a mapped root: ServiceNumber = %q, %q", n, m)
	}
	if n, _ := (Emergency{}).ServiceNumber("urn:service:sos"); n != "" {
		t.Errorf("ServiceNumber without numbers = %q", n)
	}
}
