package heartbeater

import "errors"

// Sentinel errors. Every error this package returns matches exactly one of them with
// errors.Is, and prints the engine's precise message (which names the field and the
// accepted form for configuration errors) — except the context errors of StartContext
// and Shutdown, which wrap ctx.Err().
var (
	// ErrConfig: an option was rejected (bad endpoint, ttl, label, ...).
	ErrConfig = errors.New("heartbeater: configuration error")
	// ErrConnect: a server (etcd, a monitor) could not be reached.
	ErrConnect = errors.New("heartbeater: cannot connect")
	// ErrPermissionDenied: the server refused our credentials.
	ErrPermissionDenied = errors.New("heartbeater: permission denied")
	// ErrNotHolder: fencing says this process can no longer be sure it holds its registration.
	ErrNotHolder = errors.New("heartbeater: not the holder")
	// ErrStopped: the handle is stopped (or closed) and cannot do this.
	ErrStopped = errors.New("heartbeater: stopped")
	// ErrForked: the handle was made by the parent of a fork; make a new one in the child.
	ErrForked = errors.New("heartbeater: handle used after fork")
	// ErrInvalidState: the call is not allowed in the handle's current situation.
	ErrInvalidState = errors.New("heartbeater: invalid state")
	// ErrTimeout: a bounded wait ran out (e.g. Stop's goodbye was not acknowledged in time).
	ErrTimeout = errors.New("heartbeater: timeout")
	// ErrIO: an operating-system level failure (bind, socket options, thread spawn).
	ErrIO = errors.New("heartbeater: i/o error")
	// ErrInternal: a bug in heartbeater, reported instead of crashing the process.
	ErrInternal = errors.New("heartbeater: internal error")
)

// Error is the concrete type of every error returned by this package. Kind is one of the
// sentinels; Message is the engine's (or this package's) precise description.
type Error struct {
	Kind    error
	Message string
}

func (e *Error) Error() string { return "heartbeater: " + e.Message }

// Is makes errors.Is(err, ErrConfig) and friends work.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap exposes the sentinel, so wrapping with fmt.Errorf("...: %w", err) keeps matching.
func (e *Error) Unwrap() error { return e.Kind }

func newError(kind error, message string) error {
	return &Error{Kind: kind, Message: message}
}
