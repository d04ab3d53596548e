package heartbeater

/*
#include "heartbeater.h"
*/
import "C"

import "time"

// takePeers copies an owned hb_peers snapshot into Go memory and frees it.
func takePeers(ps *C.hb_peers) []Peer {
	defer C.hb_peers_free(ps)
	n := int(C.hb_peers_len(ps))
	out := make([]Peer, 0, n)
	for i := 0; i < n; i++ {
		p := C.hb_peers_get(ps, C.size_t(i))
		if p == nil {
			continue
		}
		peer := Peer{
			ID:          C.GoString(C.hb_peer_id(p)),
			Service:     C.GoString(C.hb_peer_service(p)),
			State:       stateName(uint32(C.hb_peer_state(p))),
			LastSeen:    time.UnixMilli(int64(C.hb_peer_last_seen_unix_ms(p))),
			Incarnation: uint32(C.hb_peer_incarnation(p)),
			Epoch:       uint64(C.hb_peer_epoch(p)),
			Interval:    time.Duration(C.hb_peer_interval_ms(p)) * time.Millisecond,
		}
		if rtt := int64(C.hb_peer_rtt_us(p)); rtt >= 0 {
			peer.RTT = time.Duration(rtt) * time.Microsecond
		}
		if a := C.hb_peer_addr(p); a != nil {
			peer.Addr = C.GoString(a)
		}
		if nl := int(C.hb_peer_label_count(p)); nl > 0 {
			peer.Labels = make(map[string]string, nl)
			for j := 0; j < nl; j++ {
				var k, v *C.char
				if C.hb_peer_label_at(p, C.size_t(j), &k, &v, nil) == C.HB_STATUS_OK {
					peer.Labels[C.GoString(k)] = C.GoString(v)
				}
			}
		}
		out = append(out, peer)
	}
	return out
}
