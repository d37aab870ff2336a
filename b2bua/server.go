package b2bua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/parapet-sbc/parapet/compliance"
	"github.com/parapet-sbc/parapet/media"
	"github.com/parapet-sbc/parapet/policy"
	"github.com/parapet-sbc/parapet/topology"
)

// Server is parapet's B2BUA: one sipgo user agent per zone, and the calls
// between them.
type Server struct {
	cfg    Config
	log    *slog.Logger
	zones  []*zone
	byName map[string]*zone
	pool   *media.PortPool
	rec    *recorder
	events *eventFolder // folds floods of refusals, in records and logs alike
	// outsiders sums refusals of sources outside the zones' peers into
	// one record per zone and period.
	outsiders *outsiderTallies
	// lines folds repeated warnings and errors in the server's log.
	lines *lineFolder
	stats stats
	// dtls is parapet's certificate for DTLS-SRTP, one per process; peers
	// check it against the fingerprint in parapet's SDP.
	dtls *media.DTLSCertificate
	// rules are the policies, routes and media timeout new calls get.
	rules atomic.Pointer[rules]
	// budget is what outsiders may still be answered (rebuilt when a
	// reload changes the limits).
	budget atomic.Pointer[outsiderBudget]
	// sosBudget is outsiders' emergency INVITEs' own budget, in zones in
	// observe mode (sosgate.go).
	sosBudget *outsiderBudget

	// reg books the live calls, their legs, route slots and goroutines.
	reg *registry
	// trunks are the routes' registrations with their carriers.
	trunks *trunkSet
	// env is what calls get of the server.
	env *env
	// binds are the users registered through parapet (bindings.go).
	binds *bindings
	// startMu guards started against a second Start.
	startMu sync.Mutex

	// evMu orders connection events against the final drain at shutdown:
	// an event being recorded holds it shared, Shutdown exclusively, so an
	// event is either in the drain or, after it (evDone), written alone.
	evMu     sync.RWMutex
	evDone   bool
	stopping chan struct{} // closed when Shutdown starts
	stopOnce sync.Once
	serveWG  sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc
	started  bool
}

// SetProcessLogger routes the few messages sipgo logs through its
// package-wide default logger (connection reference counting, and whole
// messages if its SIP debugging were ever switched on) through parapet's
// redacting handler. It sets a process global: call it once, at start,
// before any Server exists.
func SetProcessLogger(l *slog.Logger) {
	sip.SetDefaultLogger(slog.New(&redactHandler{h: l.Handler()}))
}

// New validates cfg and builds the server. Nothing is bound until Start.
func New(cfg Config) (*Server, error) {
	if cfg.Sink == nil {
		return nil, errors.New("b2bua: no compliance sink")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Limits == (topology.Limits{}) {
		cfg.Limits = topology.DefaultLimits
	}
	if cfg.Media.Timeout <= 0 {
		cfg.Media.Timeout = 30 * time.Second
	}
	pool, err := media.NewPortPool(cfg.Media.Address, cfg.Media.PortMin, cfg.Media.PortMax)
	if err != nil {
		return nil, err
	}
	lines := newLineFolder(10 * time.Second)
	s := &Server{
		cfg:      cfg,
		lines:    lines,
		log:      slog.New(newFoldHandler(cfg.Logger.Handler(), lines)),
		byName:   map[string]*zone{},
		pool:     pool,
		reg:      newRegistry(),
		trunks:   newTrunkSet(),
		stopping: make(chan struct{}),
	}
	if s.dtls, err = media.NewDTLSCertificate(); err != nil {
		return nil, fmt.Errorf("b2bua: DTLS-SRTP certificate: %w", err)
	}
	s.rules.Store(newRules(&cfg))
	s.budget.Store(newOutsiderBudget(s.rules.Load().limits))
	s.sosBudget = newOutsiderBudget(emergencyOutsiderLimits)
	s.rec = newRecorder(cfg.Sink, s.log, &s.stats)
	s.rec.journal = cfg.Journal
	s.events = newEventFolder(10 * time.Second)
	s.outsiders = newOutsiderTallies()
	s.env = &env{reg: s.reg, rec: s.rec, stats: &s.stats, pool: pool, dtls: s.dtls,
		zones: s.byName, advertise: cfg.Media.Advertise, mediaAddr: cfg.Media.Advertise, pseudo: cfg.Pseudonymizer,
		journal: cfg.Journal, stopping: s.stopping, events: s, trunks: s.trunks, health: newHealth(s.log), binds: newBindings(s.log),
		challenges: newChallengeBook()}
	s.binds = s.env.binds
	if !s.env.mediaAddr.IsValid() {
		s.env.mediaAddr = cfg.Media.Address
	}
	for i := range cfg.Zones {
		zc := cfg.Zones[i]
		if _, dup := s.byName[zc.Policy.Name]; dup {
			return nil, fmt.Errorf("b2bua: duplicate zone %q", zc.Policy.Name)
		}
		z, err := s.newZone(zc, cfg.TLS[zc.Policy.Name])
		if err != nil {
			return nil, err
		}
		s.zones = append(s.zones, z)
		s.byName[z.name] = z
	}
	if err := checkRoutes(&cfg); err != nil {
		return nil, fmt.Errorf("b2bua: %w", err)
	}
	return s, nil
}

// Start binds every listener of every zone and starts serving. A bind error
// is returned before anything is served.
func (s *Server) Start(ctx context.Context) error {
	s.startMu.Lock()
	if s.started {
		s.startMu.Unlock()
		return errors.New("b2bua: already started")
	}
	s.started = true
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.startMu.Unlock()

	for _, z := range s.zones {
		for _, l := range z.cfg.Listen {
			if err := s.bind(z, l); err != nil {
				s.closeListeners()
				return fmt.Errorf("zone %q: listen %s: %w", z.name, l, err)
			}
		}
	}
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		t := time.NewTicker(s.events.every)
		defer t.Stop()
		var refresh <-chan time.Time
		if s.cfg.Journal != nil {
			every := s.cfg.JournalRefresh
			if every <= 0 {
				every = DefaultJournalRefresh
			}
			rt := time.NewTicker(every)
			defer rt.Stop()
			refresh = rt.C
		}
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
				s.tick("event folding", func() {
					s.evMu.Lock()
					defer s.evMu.Unlock()
					s.drainEvents(false)
				})
			case <-refresh:
				s.tick("journal refresh", s.refreshJournal)
			}
		}
	}()
	s.startPingers()
	for _, z := range s.zones {
		for _, serve := range z.serve {
			s.serveWG.Add(1)
			s.goSafe("sip listener of zone "+z.name, func() {
				defer s.serveWG.Done()
				if err := serve(); err != nil && !errors.Is(err, net.ErrClosed) {
					s.log.Error("sip listener stopped", "zone", z.name, "error", err)
				}
			})
		}
		// sipgo registers a UDP listener in its connection pool from the
		// serving goroutine; requests sent from that socket need it there.
		if a, ok := z.bound[policy.TransportUDP]; ok {
			waitPooled(z.ua, a.String())
		}
	}
	s.syncTrunks(s.rules.Load())
	return nil
}

// Addrs returns the bound listener addresses of a zone, by transport.
func (s *Server) Addrs(zoneName string) map[policy.Transport]netip.AddrPort {
	z := s.byName[zoneName]
	if z == nil {
		return nil
	}
	out := map[policy.Transport]netip.AddrPort{}
	for k, v := range z.bound {
		out[k] = v
	}
	return out
}

// Ready reports whether the server accepts calls: started, not draining,
// and the compliance log writable.
func (s *Server) Ready() bool {
	return s.started && !s.isStopping() && s.rec.healthy() && s.journalHealthy()
}

// Shutdown stops taking calls, ends live calls with BYE (CANCEL or 503 for
// those not yet answered), waits for their records, then closes listeners.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	for _, c := range s.reg.live(nil) {
		c.hangup(compliance.DispositionShutdown, "shutdown")
	}
	done := make(chan struct{})
	go func() { s.reg.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %d calls still ending: %w", s.reg.count(), ctx.Err())
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.stopTrunks() // unregisters, within unregisterTimeout
	s.closeListeners()
	s.serveWG.Wait()
	for _, z := range s.zones {
		z.ua.Close()
	}
	s.evMu.Lock()
	s.evDone = true
	s.drainEvents(true)
	s.evMu.Unlock()
	s.rec.flush()
	return err
}

// isStopping reports whether Shutdown has begun: no new calls are taken.
func (s *Server) isStopping() bool { return s.env.isStopping() }
