//go:build race

package e2e

// raceEnabled builds the cluster's binary with the race detector when the
// tests run with it, so the real proxy and unit processes are checked too.
const raceEnabled = true
