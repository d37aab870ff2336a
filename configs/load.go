package configs

import (
	"cmp"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/parapet-sbc/parapet/topology"
)

//go:embed lab.hcl
var labHCL []byte

// LabName is the file name diagnostics and Config.Source give the embedded
// lab default.
const LabName = "embedded:lab.hcl"

// LabDefault returns the embedded lab default configuration (loopback only)
// and its name, "embedded:lab.hcl". Its ca_file lives under the state
// directory: the caller creates the lab PKI there before loading it.
func LabDefault() (name string, src []byte) { return LabName, slices.Clone(labHCL) }

// LoadOptions adjusts how a configuration is read. The zero value reads the
// real environment and file system.
type LoadOptions struct {
	// BaseDir resolves relative paths (state_dir, cert_file, key_file,
	// ca_file, compliance log) and is the value of ${config_dir}. Load sets
	// it to the config file's directory when empty; LoadBytes uses it as
	// given ("" = the working directory). A relative BaseDir is made
	// absolute.
	BaseDir string
	// LookupEnv reads environment variables (os.LookupEnv when nil). It is
	// used only to warn about unset password variables; values are never
	// stored.
	LookupEnv func(string) (string, bool)
	// Version is the value of ${version} ("dev" when empty).
	Version string
	// FileExists checks cert, key and CA files (os.Stat when nil).
	FileExists func(string) bool
}

// Load reads and validates the configuration file at path. It returns the
// configuration and every diagnostic found, sorted by position; the
// configuration is nil when any diagnostic is an error.
func Load(path string, opts LoadOptions) (*Config, Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{
			Severity: SeverityError,
			Summary:  "cannot read configuration",
			Detail:   sentence(err),
			File:     path,
		}}
	}
	if opts.BaseDir == "" {
		opts.BaseDir = filepath.Dir(path)
	}
	return LoadBytes(path, src, opts)
}

// LoadBytes validates the configuration src, naming it name in diagnostics
// and Config.Source. Like Load, it returns a nil configuration when any
// diagnostic is an error.
func LoadBytes(name string, src []byte, opts LoadOptions) (*Config, Diagnostics) {
	l := newLoader(name, opts)
	cfg := l.load(src)
	diags := convertDiags(name, src, l.Diagnostics)
	if cfg == nil || diags.HasErrors() {
		return nil, diags
	}
	cfg.NeedsLabCA = l.labCA
	return cfg, diags
}

// loader holds the state of one load.
type loader struct {
	diagSink
	name       string
	baseDir    string // "" = working directory
	version    string
	lookupEnv  func(string) (string, bool)
	fileExists func(string) bool
	ectx       *hcl.EvalContext

	stateDirAt string               // resolved, once known
	labCA      bool                 // a ca_file names the lab CA, not created yet
	zones      []*zoneDecl          // unique names, file order
	zoneByName map[string]*zoneDecl // includes zones whose decoding failed
	listeners  map[socketKey]claimed
}

func newLoader(name string, opts LoadOptions) *loader {
	l := &loader{
		name:       name,
		baseDir:    opts.BaseDir,
		lookupEnv:  opts.LookupEnv,
		fileExists: opts.FileExists,
		version:    opts.Version,
		zoneByName: map[string]*zoneDecl{},
		listeners:  map[socketKey]claimed{},
	}
	if l.baseDir != "" && !filepath.IsAbs(l.baseDir) {
		if abs, err := filepath.Abs(l.baseDir); err == nil {
			l.baseDir = abs
		}
	}
	if l.baseDir != "" {
		l.baseDir = filepath.Clean(l.baseDir)
	}
	if l.lookupEnv == nil {
		l.lookupEnv = os.LookupEnv
	}
	if l.fileExists == nil {
		l.fileExists = func(p string) bool {
			fi, err := os.Stat(p)
			return err == nil && !fi.IsDir()
		}
	}
	return l
}

// resolve makes a configured path absolute against BaseDir (or leaves it
// relative to the working directory when BaseDir is empty).
func (l *loader) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(l.baseDir, p)
}

func (l *loader) configDir() string {
	if l.baseDir == "" {
		return "."
	}
	return l.baseDir
}

// The top level is decoded by hand, not with gohcl, because state_dir must
// be evaluated before everything else can use ${state_dir}.
var topSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "state_dir"}},
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "zone", LabelNames: []string{"name"}},
		{Type: "route", LabelNames: []string{"name"}},
		{Type: "media"},
		{Type: "compliance"},
		{Type: "admin"},
		{Type: "limits"},
		{Type: "emergency"},
	},
}

const defaultStateDir = "parapet-state"

func (l *loader) load(src []byte) *Config {
	file, diags := hclsyntax.ParseConfig(src, l.name, hcl.InitialPos)
	l.add(diags)
	if diags.HasErrors() || file == nil {
		// A body with syntax errors is only partial: checking it would
		// report errors that are not there.
		return nil
	}
	content, diags := file.Body.Content(topSchema)
	l.add(diags)
	if content == nil {
		return nil
	}
	top := file.Body.MissingItemRange()

	cfg := &Config{Source: l.name}
	cfg.StateDir = l.stateDir(content.Attributes["state_dir"])
	l.stateDirAt = cfg.StateDir
	l.ectx = &hcl.EvalContext{Variables: map[string]cty.Value{
		"config_dir": cty.StringVal(l.configDir()),
		"state_dir":  cty.StringVal(cfg.StateDir),
		"version":    cty.StringVal(cmp.Or(l.version, "dev")),
	}}

	byType := content.Blocks.ByType()
	for _, b := range byType["zone"] {
		l.zone(b)
	}
	if len(byType["zone"]) == 0 {
		l.errorf(top, "no zones", `At least one zone block is required, such as zone "pbx" { listen = ["udp://127.0.0.1:5060"] ... }.`)
	}
	for _, zd := range l.zones {
		l.registrarZone(zd)
		cfg.Zones = append(cfg.Zones, *zd.zone)
	}

	if b := l.single(byType["media"], "media"); b != nil {
		cfg.Media = l.media(b)
	} else {
		l.errorf(top, "missing media block", `A media block is required: it says where the media relay binds, such as media { address = "127.0.0.1" }.`)
	}
	cfg.Compliance = Compliance{Log: filepath.Join(cfg.StateDir, "compliance.jsonl"), Pseudonymize: true}
	if b := l.single(byType["compliance"], "compliance"); b != nil {
		cfg.Compliance = l.compliance(b, cfg.Compliance)
	}
	if b := l.single(byType["admin"], "admin"); b != nil {
		cfg.Admin = l.admin(b)
	}
	cfg.Limits = topology.DefaultLimits
	if b := l.single(byType["limits"], "limits"); b != nil {
		cfg.Limits = l.limits(b)
	}

	var emergencyAt hcl.Range
	if b := l.single(byType["emergency"], "emergency"); b != nil {
		cfg.Emergency, emergencyAt = l.emergency(b), b.DefRange
	}

	routeDefs := map[string]hcl.Range{}
	for _, b := range byType["route"] {
		r := l.route(b)
		if r == nil {
			continue
		}
		if prev, dup := routeDefs[r.Name]; dup {
			l.errorf(b.LabelRanges[0], fmt.Sprintf("duplicate route %q", r.Name),
				"Route names must be unique; previous declaration at %s.", where(prev))
			continue
		}
		routeDefs[r.Name] = b.DefRange
		cfg.Routes = append(cfg.Routes, *r)
	}
	if len(byType["route"]) == 0 {
		l.warnf(top, "no routes: every INVITE will get 404",
			"The configuration declares no route block, so no request can be routed.")
	}
	if len(byType["route"]) > 0 {
		l.emergencyRouted(cfg, emergencyAt)
	}
	return cfg
}

// stateDir evaluates the state_dir attribute, which may use only
// ${config_dir}.
func (l *loader) stateDir(a *hcl.Attribute) string {
	def := l.resolve(defaultStateDir)
	if a == nil {
		return def
	}
	ok := true
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() != "config_dir" {
			l.errorf(tr.SourceRange(), "state_dir may refer only to ${config_dir}",
				"state_dir is evaluated before everything else, so ${%s} is not available in it.", tr.RootName())
			ok = false
		}
	}
	if !ok {
		return def
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"config_dir": cty.StringVal(l.configDir())}}
	var s string
	diags := gohcl.DecodeExpression(a.Expr, ctx, &s)
	l.add(diags)
	switch {
	case diags.HasErrors():
		return def
	case strings.TrimSpace(s) == "":
		l.errorf(a.Expr.Range(), "empty state_dir", "state_dir must name a directory; omit it for the default %q.", defaultStateDir)
		return def
	}
	return l.resolve(s)
}

// single returns the first of blocks that may appear at most once, and
// reports the others as duplicates after decoding them for their own
// errors.
func (l *loader) single(blocks hcl.Blocks, kind string) *hcl.Block {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		l.errorf(b.DefRange, fmt.Sprintf("duplicate %s block", kind),
			"Only one %s block is allowed; previous declaration at %s.", kind, where(blocks[0].DefRange))
		switch kind {
		case "media":
			l.media(b)
		case "compliance":
			l.compliance(b, Compliance{})
		case "admin":
			l.admin(b)
		case "limits":
			l.limits(b)
		case "emergency":
			l.emergency(b)
		}
	}
	return blocks[0]
}

// checkFile resolves a configured file path and reports it when it does not
// exist. It returns the resolved path ("" after an error).
func (l *loader) checkFile(s *scope, attr, p string) string {
	if strings.TrimSpace(p) == "" {
		l.errorf(s.value(attr), "empty path", "%s must name a file; omit it instead.", attr)
		return ""
	}
	abs := l.resolve(p)
	if !l.fileExists(abs) && attr == "ca_file" && l.stateDirAt != "" && abs == l.resolve(filepath.Join(l.stateDirAt, LabCAFile)) {
		// The lab CA in the state directory: `parapet run` creates it
		// before it loads certificates, as for the embedded default.
		l.labCA = true
		return abs
	}
	if !l.fileExists(abs) {
		where := ""
		if abs != p {
			where = fmt.Sprintf(" (resolved to %q)", abs)
		}
		l.errorf(s.value(attr), "file not found", "%s %q%s does not exist or is not a regular file.", attr, p, where)
		return ""
	}
	return abs
}
