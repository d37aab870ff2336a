//go:build race

package compliance

// raceEnabled is set when the tests run with -race, which makes the long
// scans ten times slower.
const raceEnabled = true
