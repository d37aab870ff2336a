package b2bua

import (
	"time"

	"github.com/parapet-sbc/parapet/compliance"
)

// Journal keeps the calls that are up on disk, so that a crash cannot make
// them vanish (*compliance.Journal; see Config.Journal).
type Journal interface {
	// Commit queues a snapshot of a live call to be fsync'd at once; the
	// channel says when it is on disk (nil) or why it is not.
	Commit(*compliance.Call) <-chan error
	// Note queues a snapshot nobody waits for (written at once, fsync'd
	// soon after).
	Note(*compliance.Call)
	// End says the call's final record is in the compliance log.
	End(id string)
	// Err is nil while the journal can be written: its last write (or,
	// after a failure, a write as large as an entry) succeeded. While it is
	// not, new calls are refused, rather than refused once answered.
	Err() error
}

// What a call's journal entries cover. A call is journaled once it is
// routed and its INVITE toward the callee is sent (begin: Note, not waited
// for), again just before parapet's 200 to the caller (Commit, waited for:
// an answered call is on disk before the caller learns it is answered),
// and when its media changes afterwards (DTLS-SRTP keys agreed, a re-offer
// taken: Note). Its end entry is written by the recorder once the call's
// final record is in the log. Calls refused before they are routed never
// touch the journal.

// journal writes a snapshot of the call to the journal, if there is one,
// and with wait returns once it is on disk. Once the call's record is
// handed to the recorder (finish), it writes nothing more: the end entry
// that follows the record must be the call's last.
func (c *Call) journal(wait bool) error {
	j := c.env.journal
	if j == nil {
		return nil
	}
	c.jmu.Lock()
	if c.jDone {
		c.jmu.Unlock()
		return nil
	}
	if !wait {
		j.Note(c.snapshot())
		c.jBegun = true
		c.jmu.Unlock()
		return nil
	}
	done := j.Commit(c.snapshot())
	c.jBegun = true
	c.jmu.Unlock()
	return <-done
}

// journalUpdate updates the call's journal entry if it has one (and the call
// is not over), without waiting; for changes that come after the answer.
func (c *Call) journalUpdate() {
	c.jmu.Lock()
	begun := c.jBegun
	c.jmu.Unlock()
	if begun {
		_ = c.journal(false)
	}
}

// journalClose ends the call's journal life: nothing more is written for it
// until the recorder's end entry.
func (c *Call) journalClose() {
	c.jmu.Lock()
	c.jDone = true
	c.jmu.Unlock()
}

// journalHealthy reports whether calls can be journaled (true without a
// journal).
func (s *Server) journalHealthy() bool { return s.env.journalHealthy() }

// DefaultJournalRefresh is how often, by default, the journal entries of
// answered calls are renewed.
const DefaultJournalRefresh = 30 * time.Second

// refreshJournal renews the journal entry of every answered call (not
// waited for): the end a crash leaves in its record, and its counters, are
// then at most one refresh old.
func (s *Server) refreshJournal() {
	for _, c := range s.reg.live(func(c *Call) bool { return c.established.Load() }) {
		c.journalUpdate()
	}
}
