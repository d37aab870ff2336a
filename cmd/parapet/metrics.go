package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parapet-sbc/parapet/b2bua"
	"github.com/parapet-sbc/parapet/compliance"
)

// collector exposes the server's counters to Prometheus, read at scrape time.
type collector struct {
	srv     *b2bua.Server
	journal *compliance.Journal // nil: no journal

	calls, active, tlsOK, tlsRefused, connRefused, records, recordFail, backlog *prometheus.Desc
	ports, portsUsed, packets, authFail, replays, wrongSource, info             *prometheus.Desc
	policyInfo, parseErrors, outsiders, callLimited, emergency                  *prometheus.Desc
	malformed, unprotected, stun, dtls                                          *prometheus.Desc
	journalSyncs, journalFail, journalOK                                        *prometheus.Desc
	trunkRegistered, trunkState                                                 *prometheus.Desc
	targetUp                                                                    *prometheus.Desc
}

func newCollector(srv *b2bua.Server, journal *compliance.Journal) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("parapet_"+name, help, labels, nil)
	}
	return &collector{
		srv:             srv,
		journal:         journal,
		calls:           d("calls_total", "Calls ended, by disposition.", "disposition"),
		active:          d("calls_active", "Calls in progress."),
		tlsOK:           d("tls_handshakes_total", "TLS handshakes completed on listeners."),
		tlsRefused:      d("tls_handshakes_refused_total", "TLS handshakes refused or failed (listeners and outbound)."),
		connRefused:     d("connections_refused_total", "TCP/TLS connections closed at accept by the connection limits, or because the zone drops outsiders."),
		parseErrors:     d("sip_parse_errors_total", "Datagrams and stream reads on SIP listeners that were not SIP (dropped; a TCP/TLS connection is closed), and requests without what every SIP request must carry (dropped without a Via branch, else 400 or 505)."),
		outsiders:       d("outsider_requests_total", "Requests and TCP/TLS connections from outside the zones' peers, by what they came to: refused (one stateless 403), dropped (zone drops outsiders), scanner, over_budget (beyond the outsider budgets: dropped), connection (closed at accept), tls_refused.", "fate"),
		callLimited:     d("calls_limited_total", "INVITEs refused with 503 and Retry-After by a call limit (site, zone or route)."),
		emergency:       d("emergency_calls_total", "Calls to emergency numbers taken: never refused for a call limit or an unwritable log."),
		records:         d("compliance_records_total", "Compliance records written."),
		recordFail:      d("compliance_write_failures_total", "Failed attempts to write a compliance record."),
		backlog:         d("compliance_backlog", "Compliance records waiting to be written (non-zero: calls are refused)."),
		ports:           d("media_ports", "Media ports in the pool."),
		portsUsed:       d("media_ports_in_use", "Media ports held by calls."),
		packets:         d("media_packets_total", "Media packets accepted from peers (valid, and authenticated on SRTP legs), live calls included."),
		authFail:        d("srtp_auth_failures_total", "SRTP/SRTCP packets dropped because their authentication tag did not verify (forged, altered, or a peer with the wrong key), live calls included."),
		replays:         d("srtp_replays_total", "SRTP/SRTCP packets dropped as replays, and plain packets repeating a sequence number already encrypted toward an SRTP leg, live calls included."),
		wrongSource:     d("media_wrong_source_total", "Media packets dropped for coming from an address other than the leg's peer, live calls included."),
		malformed:       d("media_malformed_total", "Packets on media ports dropped as unusable (not RTP/RTCP, STUN or DTLS by their first byte, truncated, bad lengths, on a port that carries no media), live calls included."),
		unprotected:     d("media_unprotected_total", "Clear RTP/RTCP packets dropped on SRTP legs (not forgeries: they claim no protection), live calls included."),
		stun:            d("media_stun_total", "STUN messages received on media ports and dropped unanswered (parapet does no ICE), live calls included."),
		dtls:            d("media_dtls_total", "Datagrams of DTLS records received on media ports: DTLS-SRTP key agreement, or dropped on legs keyed otherwise; live calls included."),
		journalSyncs:    d("journal_fsyncs_total", "Batches of the live-call journal fsync'd (several calls' entries share one)."),
		journalFail:     d("journal_failures_total", "Batches of the live-call journal that could not be written or fsync'd."),
		journalOK:       d("journal_healthy", "1 when the live-call journal's last write succeeded; 0 when it failed (answered calls are then refused with 503)."),
		trunkRegistered: d("trunk_registered", "1 when the route's registration with its carrier is in force, 0 otherwise (registering, failed or unregistered).", "route"),
		trunkState:      d("trunk_registration_state", "1 for the current state of the route's registration with its carrier (registering, registered, failed, unregistered), 0 for the others.", "route", "state"),
		targetUp:        d("route_target_up", "1 when OPTIONS pings find the route's target up, 0 when down (routes with several targets and an options_interval; calls skip a down target).", "route", "target"),
		info:            d("build_info", "parapet build information.", "version"),
		policyInfo:      d("policy_info", "The policy new calls are judged by (a SIGHUP reload can change it).", "policy_hash"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.calls, c.active, c.tlsOK, c.tlsRefused, c.connRefused, c.parseErrors, c.outsiders, c.callLimited, c.emergency, c.records, c.recordFail, c.backlog,
		c.ports, c.portsUsed, c.packets, c.authFail, c.replays, c.wrongSource, c.malformed, c.unprotected, c.stun, c.dtls,
		c.info, c.policyInfo, c.journalSyncs, c.journalFail, c.journalOK, c.trunkRegistered, c.trunkState, c.targetUp} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	for disp, n := range st.Calls {
		counter(c.calls, n, disp)
	}
	gauge(c.active, float64(st.CallsActive))
	counter(c.tlsOK, st.TLSHandshakes)
	counter(c.tlsRefused, st.TLSRefused)
	counter(c.connRefused, st.ConnsRefused)
	counter(c.parseErrors, st.ParseErrors)
	for fate, n := range st.Outsiders {
		counter(c.outsiders, n, fate)
	}
	counter(c.callLimited, st.CallLimited)
	counter(c.emergency, st.EmergencyCalls)
	counter(c.records, st.Records)
	counter(c.recordFail, st.RecordFailures)
	gauge(c.backlog, float64(st.RecordBacklog))
	gauge(c.ports, float64(st.MediaPorts))
	gauge(c.portsUsed, float64(st.MediaPortsInUse))
	counter(c.packets, st.PacketsRelayed)
	counter(c.authFail, st.AuthFailures)
	counter(c.replays, st.Replays)
	counter(c.wrongSource, st.WrongSource)
	counter(c.malformed, st.Malformed)
	counter(c.unprotected, st.Unprotected)
	counter(c.stun, st.STUN)
	counter(c.dtls, st.DTLS)
	if c.journal != nil {
		counter(c.journalSyncs, c.journal.Syncs())
		counter(c.journalFail, c.journal.Failures())
		ok := 1.0
		if c.journal.Err() != nil {
			ok = 0
		}
		gauge(c.journalOK, ok)
	}
	for route, state := range st.Trunks {
		gauge(c.trunkRegistered, b2f(state == b2bua.TrunkRegistered), route)
		for _, s := range b2bua.TrunkStates {
			gauge(c.trunkState, b2f(state == s), route, string(s))
		}
	}
	for _, t := range st.Targets {
		gauge(c.targetUp, b2f(t.Up), t.Route, t.Target)
	}
	gauge(c.info, 1, parapetVersion())
	gauge(c.policyInfo, 1, c.srv.PolicyHash())
}

func metricsHandler(srv *b2bua.Server, journal *compliance.Journal) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(srv, journal), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// b2f is 1 for true, 0 for false.
func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
