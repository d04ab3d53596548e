package heartbeater

/*
#include <stdint.h>
#include "heartbeater.h"
*/
import "C"

import "runtime/cgo"

// hbGoEvent is the one trampoline the engine's delivery thread calls for every event of
// every handle. It copies the borrowed event into Go memory and hands it to the handle's
// pump without blocking; nothing may unwind into Rust, hence the recover.
//
//export hbGoEvent
func hbGoEvent(userData C.uintptr_t, ev *C.hb_event) {
	defer func() { _ = recover() }()
	p, ok := cgo.Handle(userData).Value().(*pump)
	if !ok || ev == nil {
		return
	}
	p.offer(copyEvent(ev))
}

// hbGoDrop is the user-data destructor: called exactly once, after the last hbGoEvent
// for this user data.
//
//export hbGoDrop
func hbGoDrop(userData C.uintptr_t) {
	defer func() { _ = recover() }()
	hbDrop(cgo.Handle(userData))
}

func hbDrop(h cgo.Handle) {
	p, ok := h.Value().(*pump)
	h.Delete()
	if ok {
		p.closeIn()
	}
}
