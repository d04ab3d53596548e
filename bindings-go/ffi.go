package heartbeater

/*
#include <stdlib.h>
#include "heartbeater.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// sentinelFor maps an hb_status to its sentinel. The codes are the header's own
// constants (C.HB_STATUS_*), never a copy; status_test.go walks hb_status_str over them.
func sentinelFor(status C.hb_status) error {
	switch status {
	case C.HB_STATUS_INVALID_UTF8, C.HB_STATUS_CONFIG:
		return ErrConfig
	case C.HB_STATUS_CONNECT:
		return ErrConnect
	case C.HB_STATUS_PERMISSION_DENIED:
		return ErrPermissionDenied
	case C.HB_STATUS_NOT_HOLDER:
		return ErrNotHolder
	case C.HB_STATUS_STOPPED:
		return ErrStopped
	case C.HB_STATUS_FORKED:
		return ErrForked
	case C.HB_STATUS_INVALID_STATE:
		return ErrInvalidState
	case C.HB_STATUS_TIMEOUT:
		return ErrTimeout
	case C.HB_STATUS_IO:
		return ErrIO
	default: // NULL_ARGUMENT, PANIC, BAD_HANDLE, OUT_OF_RANGE ... are bugs on one side or the other.
		return ErrInternal
	}
}

// takeError turns a status and the owned hb_error of one C call into a Go error, and
// frees the hb_error. The message is copied before the free.
func takeError(status C.hb_status, cerr *C.hb_error) error {
	defer C.hb_error_free(cerr)
	if status == C.HB_STATUS_OK {
		return nil
	}
	msg := ""
	if cerr != nil {
		if m := C.hb_error_message(cerr); m != nil {
			msg = C.GoString(m)
		}
	}
	if msg == "" {
		msg = C.GoString(C.hb_status_str(C.uint32_t(status)))
	}
	return newError(sentinelFor(status), msg)
}

// cString copies s into C memory (free with C.free). A NUL byte cannot cross the C ABI, so
// it is reported as a configuration error naming the field instead of being truncated.
func cString(field, s string) (*C.char, error) {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return nil, newError(ErrConfig, fmt.Sprintf("%s %q: contains a NUL byte at offset %d", field, s, i))
	}
	return C.CString(s), nil
}

func freeC(p *C.char) { C.free(unsafe.Pointer(p)) }

// goStringFree copies a string owned by the caller (from hb_*) and frees it.
func goStringFree(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.hb_string_free(p)
	return C.GoString(p)
}

// Version is the engine's version (Cargo package version of libheartbeater).
func Version() string { return C.GoString(C.hb_version()) }

// statusName is the engine's name of a status code (hb_status_str), "unknown" past the end.
func statusName(code uint32) string { return C.GoString(C.hb_status_str(C.uint32_t(code))) }

// sentinelForCode is sentinelFor for a code given as a plain integer (tests, drift checks).
func sentinelForCode(code uint32) error { return sentinelFor(C.hb_status(code)) }
