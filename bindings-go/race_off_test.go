//go:build !race

package heartbeater

const raceEnabled = false
