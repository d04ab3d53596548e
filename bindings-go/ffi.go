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

// Status codes of the C ABI (hb_status), in the header's order.
const (
	statusOK               = 0
	statusNullArgument     = 1
	statusInvalidUTF8      = 2
	statusConfig           = 3
	statusConnect          = 4
	statusPermissionDenied = 5
	statusNotHolder        = 6
	statusStopped          = 7
	statusForked           = 8
	statusInvalidState     = 9
	statusTimeout          = 10
	statusIO               = 11
	statusInternal         = 12
	statusPanic            = 13
)

func sentinelFor(status uint32) error {
	switch status {
	case statusInvalidUTF8, statusConfig:
		return ErrConfig
	case statusConnect:
		return ErrConnect
	case statusPermissionDenied:
		return ErrPermissionDenied
	case statusNotHolder:
		return ErrNotHolder
	case statusStopped:
		return ErrStopped
	case statusForked:
		return ErrForked
	case statusInvalidState:
		return ErrInvalidState
	case statusTimeout:
		return ErrTimeout
	case statusIO:
		return ErrIO
	default: // NULL_ARGUMENT, PANIC, BAD_HANDLE, ... are bugs on one side or the other.
		return ErrInternal
	}
}

// takeError turns a status and the owned hb_error of one C call into a Go error, and
// frees the hb_error. The message is copied before the free.
func takeError(status C.hb_status, cerr *C.hb_error) error {
	defer C.hb_error_free(cerr)
	if uint32(status) == statusOK {
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
	return newError(sentinelFor(uint32(status)), msg)
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
