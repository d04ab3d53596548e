// Package heartbeater keeps a process registered as alive (Client) and watches many
// processes (Monitor, Watcher), over the heartbeater engine written in Rust.
//
// The engine runs on its own small thread pool inside this process, so a Go GC pause or a
// busy goroutine can never make a healthy process look dead. This package is a thin cgo
// layer over the engine's C ABI (include/heartbeater.h, libheartbeater.a):
//
//	hb := heartbeater.NewClient(
//	    heartbeater.WithEndpoint("etcd://127.0.0.1:2379/services"),
//	    heartbeater.WithTTL(15*time.Second),
//	)
//	if err := hb.Start(); err != nil {
//	    log.Fatal("failed to start heartbeat:", err)
//	}
//	defer hb.Stop() // graceful: sends the offline signal
//
// Errors match the exported sentinels with errors.Is (ErrConfig, ErrConnect, ErrNotHolder,
// ErrStopped, ...) and print the engine's precise message.
//
// Events (state transitions) reach Go through Events() and OnEvent. The engine's delivery
// thread hands each event to a per-handle goroutine without ever blocking; that goroutine
// runs OnEvent callbacks (a panic in one is recovered, logged and counted) and offers the
// event to the Events() channel. After Stop returns, no goroutine of this package is left
// for that handle and the Events() channel is closed (a Stop called while an OnEvent
// function runs does not wait for it; no later OnEvent call is made). The lifecycle —
// what each call returns before Start, while running and after Stop — is the engine's,
// the same in every language; see docs/go.md.
package heartbeater
