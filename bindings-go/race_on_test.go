//go:build race

package heartbeater

// The race detector keeps shadow memory and sync history that grow with every goroutine
// and allocation, so RSS figures are only meaningful without it.
const raceEnabled = true
