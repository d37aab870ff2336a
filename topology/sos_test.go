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
	if n := (Emergency{Numbers: []string{"112", "911"}}).ServiceNumber(); n != "112" {
		t.Errorf("ServiceNumber = %q", n)
	}
	if n := (Emergency{}).ServiceNumber(); n != "" {
		t.Errorf("ServiceNumber without numbers = %q", n)
	}
}
