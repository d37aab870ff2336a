// Package b2bua is parapet's call engine: per-zone SIP listeners on sipgo,
// INVITE handling and routing, the two dialogs of every call, policy
// enforcement at every offer and answer, TLS connection-state capture, and
// exactly one compliance record per call.
//
// b2bua receives everything it needs through Config: the zones, routes and
// media settings as topology describes them (configs produces them), and
// the TLS configurations built from the certificates. It never reads config
// files or certificates itself (it does not import configs or certs).
// Reload and CheckReload alone decide what a new configuration may change
// live and name the setting that needs a restart.
//
// # A call, phase by phase
//
// handleInvite (handlers.go routes the INVITE there) makes a Call
// (call.go) and runs it (Call.run) through its phases, each in a file
// named after it:
//
//   - admit (admit.go): is parapet taking calls (not stopping, its log and
//     journal writable); does the zone admit the source and signaling
//     (policy's admission stage); is the INVITE one parapet can act on.
//   - route (route.go): the first matching route of the caller's zone, a
//     slot on it when it has a call limit, and leg B toward its target.
//   - take the offer (offer.go): the caller's SDP is judged against both
//     zones (policy's offer stage, which also plans the onward leg), A's
//     dialog is made, the relay set up. Each leg's offer/answer state
//     (o= line, streams, keys kept across re-offers, hold) is a
//     media.Negotiation; sdp.go maps policy's stream choices onto it and
//     configures the relay from what it agreed.
//   - ring B (ringb.go): B's INVITE, its progress relayed to A, digest
//     challenges answered; a callee that refuses the offer with 488 gets
//     the zone's next key exchange (a loop). Giving up on B (CANCEL, a 2xx
//     that crosses it) is cancelb.go's; what is learnt of leg B as it
//     rings, legb.go's; why it failed, outcome.go's classify. A delayed
//     offer (no SDP from A) is delayed.go's. A request over 1,300 bytes
//     toward a UDP target tries TCP first, and what must go over UDP is
//     sent however large (bigsip.go, RFC 3261 section 18.1.1).
//   - answer A (answera.go): the 2xx, journalled first, and its ACK.
//   - talk (talk.go): until a BYE, a media timeout, a session timer that
//     ran out or shutdown; requests inside the dialogs (re-INVITE, INFO,
//     BYE) are bridged by dialog.go, UPDATE by update.go (a new offer as
//     a re-INVITE's, a session refresh on its own leg), reliable
//     provisionals by rel100.go (both ways); each leg's session timer
//     (RFC 4028) is timer.go's.
//   - transfer (refer.go, referleg.go, replaces.go): a REFER from a peer
//     of the call, where its zone allows transfer, has parapet place a new
//     leg toward the Refer-To target in the referrer's zone and move the
//     relay's side to it. Its INVITE carries a Referred-By (RFC 3892): the
//     REFER's, else the referrer's. Attended transfer (Refer-To with
//     Replaces, RFC 3891): dialog ids do not cross a B2BUA, so a Replaces
//     naming a dialog parapet does not hold (a consultation call between
//     two phones inside the PBX) is passed as given, with Require:
//     replaces; one naming a leg of another call through parapet is
//     translated to that call's other leg, whose peer becomes the target,
//     when that leg is in the referrer's zone, and refused (501) when not
//     (a REFER never calls into another zone). An INVITE that carries
//     Replaces is never routed on: naming a leg parapet answered (or a
//     transfer placed) on a call's A side, from a peer of that leg's zone,
//     it takes that leg's place (replacesin.go); else it is refused at
//     admission: 481 when it names no dialog parapet holds, 400 when it
//     does not parse, 403, 486, 488 or 501 when parapet may not let it
//     replace the leg it names.
//   - tear down (teardown.go): BYE on both legs, and after a caller's late
//     ACK.
//   - record (record.go): the one record, written by finish, deferred by
//     handleInvite whatever path the call took.
//
// # Who owns what
//
// The server (server.go: New, Start, Shutdown; zone.go: listeners;
// handlers.go: request handlers; events.go: connection events; stats.go)
// keeps its live calls in a registry (registry.go): calls by id, legs by
// their dialog key, route slots, and the WaitGroup of call goroutines,
// behind one mutex that only the registry takes. A Call's state is guarded
// by Call.mu, documented on the struct; a leg's dialog bookkeeping by the
// leg's own lock, leg.mu, never held with another. Lock order: Call.reinvite (one offer/answer at a
// time) before Call.jmu (the journal's, whose snapshot reads the call)
// before Call.mu. The registry's mutex is never held with a call's: the
// registry calls nothing of a call's but atomics.
package b2bua
