package heartbeater

/*
#include "heartbeater.h"
*/
import "C"

import "time"

// copyEvent copies a borrowed hb_event into Go memory (the event is only valid during the
// callback).
func copyEvent(ev *C.hb_event) Event {
	e := Event{
		Peer:        C.GoString(C.hb_event_peer(ev)),
		Service:     C.GoString(C.hb_event_service(ev)),
		From:        stateName(uint32(C.hb_event_from(ev))),
		To:          stateName(uint32(C.hb_event_to(ev))),
		Reason:      reasonName(uint32(C.hb_event_reason(ev))),
		At:          time.UnixMilli(int64(C.hb_event_at_unix_ms(ev))),
		Incarnation: uint32(C.hb_event_incarnation(ev)),
		Epoch:       uint64(C.hb_event_epoch(ev)),
	}
	if n := int(C.hb_event_label_count(ev)); n > 0 {
		e.Labels = make(map[string]string, n)
		for i := 0; i < n; i++ {
			var k, v *C.char
			if C.hb_event_label_at(ev, C.size_t(i), &k, &v, nil) == C.HB_STATUS_OK {
				e.Labels[C.GoString(k)] = C.GoString(v)
			}
		}
	}
	if tp := C.hb_event_traceparent(ev); tp != nil {
		e.Traceparent = C.GoString(tp)
	}
	return e
}

func stateName(s uint32) State {
	return State(C.GoString(C.hb_state_str(C.uint32_t(s))))
}

func reasonName(r uint32) Reason {
	return Reason(C.GoString(C.hb_reason_str(C.uint32_t(r))))
}
