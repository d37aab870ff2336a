package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteInventoryText writes the legacy inventory alone, for a terminal: one
// block per peer, worst first, with what it offered and what to do.
func WriteInventoryText(w io.Writer, r *Report) error {
	ew := &errWriter{w: w}
	inv := r.Inventory
	fmt.Fprintf(ew, "parapet legacy inventory: %d %s to upgrade or replace", len(inv.Peers), plural(len(inv.Peers), "peer", "peers"))
	if inv.Omitted > 0 {
		fmt.Fprintf(ew, " (and %d omitted)", inv.Omitted)
	}
	fmt.Fprintf(ew, "\n%s\n", periodLine(r))
	if len(inv.Peers) == 0 {
		fmt.Fprintln(ew, "\nNo peer offered TLS below 1.2, SIP without TLS where TLS is required, plain RTP,")
		fmt.Fprintln(ew, "a weak SRTP suite, or no certificate where one was asked, in this period.")
		return ew.err
	}
	for i, p := range inv.Peers {
		fmt.Fprintf(ew, "\n%d. %s", i+1, p.Address)
		if len(p.Zones) > 0 {
			fmt.Fprintf(ew, "  (zone %s)", strings.Join(p.Zones, ", "))
		}
		fmt.Fprintln(ew)
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
		if p.UserAgent != "" {
			fmt.Fprintf(tw, "   device\t%s\n", p.UserAgent)
		}
		if p.CertSubject != "" {
			fmt.Fprintf(tw, "   certificate\t%s\n", p.CertSubject)
		}
		fmt.Fprintf(tw, "   seen\t%d %s, %s .. %s\n", p.Seen, plural(p.Seen, "time", "times"),
			p.FirstSeen.UTC().Format(time.RFC3339), p.LastSeen.UTC().Format(time.RFC3339))
		for _, is := range p.Issues {
			fmt.Fprintf(tw, "   %s\t%s: %d×", is.Kind, is.Offered, is.Count)
			if is.Refused > 0 {
				fmt.Fprintf(tw, " (%d refused)", is.Refused)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		fmt.Fprintf(ew, "   what to do: %s\n", p.Action)
	}
	return ew.err
}

// WriteInventoryCSV writes the legacy inventory as CSV (RFC 4180), one row
// per peer and issue, for a spreadsheet.
func WriteInventoryCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"address", "zones", "user_agent", "cert_subject", "first_seen", "last_seen", "seen",
		"issue", "offered", "count", "refused", "action"})
	for _, p := range r.Inventory.Peers {
		for _, is := range p.Issues {
			cw.Write([]string{p.Address, strings.Join(p.Zones, " "), csvSafe(p.UserAgent), csvSafe(p.CertSubject),
				p.FirstSeen.UTC().Format(time.RFC3339), p.LastSeen.UTC().Format(time.RFC3339), strconv.Itoa(p.Seen),
				is.Kind, csvSafe(is.Offered), strconv.Itoa(is.Count), strconv.Itoa(is.Refused), p.Action})
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe keeps a peer-supplied string (a User-Agent) from being read as a
// formula by a spreadsheet.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// periodLine describes the report's period in words.
func periodLine(r *Report) string {
	f := func(t *time.Time, open string) string {
		if t == nil {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	p := r.Period
	s := "period: " + f(p.Since, "the start of the log") + " .. " + f(p.Until, "its end")
	if p.First != nil {
		s += fmt.Sprintf(" (records from %s to %s)", f(p.First, ""), f(p.Last, ""))
	} else {
		s += " (no record in it)"
	}
	return s
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// InventoryDoc is the JSON form of parapet inventory: the inventory with
// what ties it to a period.
type InventoryDoc struct {
	ReportVersion int       `json:"report_version"`
	Generated     time.Time `json:"generated"`
	Generator     string    `json:"generator"`
	Period        Period    `json:"period"`
	Inventory     Inventory `json:"inventory"`
}

// WriteInventoryJSON writes the inventory alone as indented JSON.
func WriteInventoryJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(InventoryDoc{ReportVersion: r.ReportVersion, Generated: r.Generated, Generator: r.Generator,
		Period: r.Period, Inventory: r.Inventory})
}
