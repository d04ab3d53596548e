package heartbeater

// C glue for the trampolines. It lives apart from trampoline.go because a file with
// //export may only declare, not define, C functions.

/*
#include <stdint.h>
#include "heartbeater.h"

extern void hbGoEvent(uintptr_t user_data, hb_event *ev);
extern void hbGoDrop(uintptr_t user_data);

// The engine's callback signatures take void *; the cgo.Handle travels as an integer.
static void hb_go_on_event(void *user_data, const hb_event *ev) {
	hbGoEvent((uintptr_t)user_data, (hb_event *)ev);
}

static void hb_go_on_drop(void *user_data) {
	hbGoDrop((uintptr_t)user_data);
}

static hb_status hb_go_client_set_callback(hb_client *c, uintptr_t h, hb_error **err) {
	return hb_client_set_callback(c, hb_go_on_event, (void *)h, hb_go_on_drop, err);
}

static hb_status hb_go_monitor_set_callback(hb_monitor *m, uintptr_t h, hb_error **err) {
	return hb_monitor_set_callback(m, hb_go_on_event, (void *)h, hb_go_on_drop, err);
}

static hb_status hb_go_watcher_set_callback(hb_watcher *w, uintptr_t h, hb_error **err) {
	return hb_watcher_set_callback(w, hb_go_on_event, (void *)h, hb_go_on_drop, err);
}

static hb_status hb_go_election_set_callback(hb_election *e, uintptr_t h, hb_error **err) {
	return hb_election_set_callback(e, hb_go_on_event, (void *)h, hb_go_on_drop, err);
}
*/
import "C"

import "runtime/cgo"

func clientSetCallback(c *C.hb_client, h cgo.Handle) error {
	var cerr *C.hb_error
	return takeError(C.hb_go_client_set_callback(c, C.uintptr_t(h), &cerr), cerr)
}

func monitorSetCallback(m *C.hb_monitor, h cgo.Handle) error {
	var cerr *C.hb_error
	return takeError(C.hb_go_monitor_set_callback(m, C.uintptr_t(h), &cerr), cerr)
}

func watcherSetCallback(w *C.hb_watcher, h cgo.Handle) error {
	var cerr *C.hb_error
	return takeError(C.hb_go_watcher_set_callback(w, C.uintptr_t(h), &cerr), cerr)
}

func electionSetCallback(e *C.hb_election, h cgo.Handle) error {
	var cerr *C.hb_error
	return takeError(C.hb_go_election_set_callback(e, C.uintptr_t(h), &cerr), cerr)
}
