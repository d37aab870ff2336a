// Package configs is parapet's HCL front end: the configuration schema,
// decoding with a file:line:column diagnostic for every problem found in one
// pass, defaults, cross-checks between zones and routes, the embedded lab
// default (lab.hcl) and the example files (examples/*.hcl).
//
// It is the only package of parapet that imports github.com/hashicorp/hcl/v2.
// Blocks are decoded with gohcl into function-local structs and converted to
// Config, whose zones, routes and media block are topology's domain types
// (which carry no hcl tags, and which b2bua takes as they are); zone
// requirements come out as policy.Zone values. configs imports nothing of
// parapet's except policy and topology.
//
// The language is described for users in docs/config.md. Load and LoadBytes
// never stop at the first error: every block is decoded and every error and
// warning is returned, sorted by position, so that `parapet check` can show
// them all at once.
//
// The package holds no state; Load and LoadBytes may be called concurrently.
package configs
