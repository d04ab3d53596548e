package heartbeater

import (
	"fmt"
	"time"
)

// State is where a peer, a registration or this client stands. The names are the
// engine's, identical in every language.
type State string

const (
	StateUnknown State = "unknown"
	// A monitor's view of a peer.
	StateAlive   State = "alive"
	StateSuspect State = "suspect"
	StateDead    State = "dead"
	StateLeft    State = "left"
	// A client's own health.
	StateHealthy  State = "healthy"
	StateDegraded State = "degraded"
	StateLost     State = "lost"
	// A watcher's view of an etcd registration.
	StateJoined       State = "joined"
	StateUpdated      State = "updated"
	StateExpired      State = "expired"
	StateReregistered State = "reregistered"
	// The handle was stopped.
	StateStopped State = "stopped"
	// A watcher: a value under the prefix that is not a registration.
	StateInvalid State = "invalid"
	// An election: we lead, or another candidate leads now.
	StateElected       State = "elected"
	StateLeaderChanged State = "leader_changed"
)

// Reason says why a transition happened (like BFD's diagnostic code).
type Reason string

const (
	ReasonRegistered      Reason = "registered"
	ReasonRecovered       Reason = "recovered"
	ReasonTimeout         Reason = "timeout"
	ReasonLeft            Reason = "left"
	ReasonRestarted       Reason = "restarted"
	ReasonLeaseExpired    Reason = "lease_expired"
	ReasonLeaseNotFound   Reason = "lease_not_found"
	ReasonLeaseDeadline   Reason = "lease_deadline"
	ReasonDeregistered    Reason = "deregistered"
	ReasonUpdated         Reason = "updated"
	ReasonAckTimeout      Reason = "ack_timeout"
	ReasonAcked           Reason = "acked"
	ReasonConnectFailed   Reason = "connect_failed"
	ReasonKeepaliveFailed Reason = "keepalive_failed"
	ReasonRejected        Reason = "rejected"
	ReasonFlapping        Reason = "flapping"
	ReasonStopped         Reason = "stopped"
	ReasonConflict        Reason = "conflict"
	ReasonEvicted         Reason = "evicted"
	ReasonLeaveFailed     Reason = "leave_failed"
	ReasonKeyDeleted      Reason = "key_deleted"
	ReasonMalformedValue  Reason = "malformed_value"
	ReasonResigned        Reason = "resigned"
)

// Event is one transition, copied into Go memory: it stays valid forever.
type Event struct {
	// Peer is the instance id of the peer (or of this client, for its own health events).
	Peer    string
	Service string
	From    State
	To      State
	Reason  Reason
	// At is the wall-clock time of the transition.
	At          time.Time
	Incarnation uint32
	// Epoch is the registration epoch (etcd); 0 where it does not apply.
	Epoch  uint64
	Labels map[string]string
	// Traceparent is the W3C traceparent carried by the peer's last beat, if any.
	Traceparent string
}

func (e Event) String() string {
	return fmt.Sprintf("%s/%s %s -> %s (%s)", e.Service, e.Peer, e.From, e.To, e.Reason)
}

// Peer is a snapshot of one peer from Monitor.Peers or Watcher.Peers.
type Peer struct {
	ID          string
	Service     string
	Labels      map[string]string
	State       State
	LastSeen    time.Time
	Incarnation uint32
	Epoch       uint64
	// Interval the peer announced in its last beat (0 when unknown, e.g. etcd).
	Interval time.Duration
	// RTT is the peer's last reported round-trip time, 0 when unknown.
	RTT time.Duration
	// Addr is where the peer's beats come from ("udp://ip:port"), "" when unknown.
	Addr string
}

// FencingToken is (lease id, epoch): pass it to downstream compare-and-set so that a
// stale holder's writes are refused. The epoch increases with every re-registration.
type FencingToken struct {
	LeaseID int64
	Epoch   uint64
}

// Stats counts what this package did with one handle's events.
type Stats struct {
	// EventsDropped: events not put on the Events() channel because it was full, or lost
	// between the engine and Go because the handoff queue was full.
	EventsDropped uint64
	// CallbackPanics: OnEvent callbacks that panicked (recovered and logged).
	CallbackPanics uint64
}
