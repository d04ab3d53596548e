package heartbeater

/*
#include <stdlib.h>
#include <string.h>
#include "heartbeater.h"
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// config owns one hb_config while a handle is made from it.
type config struct {
	ptr *C.hb_config
}

// buildConfig applies the settings in the order given; the engine judges every value and
// the first error it reports is returned as is.
func buildConfig(s *settings) (*config, error) {
	cfg := &config{ptr: C.hb_config_new()}
	if cfg.ptr == nil {
		return nil, newError(ErrInternal, "hb_config_new returned NULL")
	}
	for _, apply := range s.list {
		if err := apply(cfg); err != nil {
			cfg.free()
			return nil, err
		}
	}
	return cfg, nil
}

func (c *config) free() {
	C.hb_config_free(c.ptr)
	c.ptr = nil
}

// set is the engine's one text setter (hb_config_set): every option with a text form goes
// through it, so the engine's parser and messages are the only ones.
func (c *config) set(key, value string) error {
	k, err := cString("option key", key)
	if err != nil {
		return err
	}
	defer freeC(k)
	v, err := cString(key, value)
	if err != nil {
		return err
	}
	defer freeC(v)
	var cerr *C.hb_error
	st := C.hb_config_set(c.ptr, k, v, &cerr)
	runtime.KeepAlive(c)
	return takeError(st, cerr)
}

// setLabel adds one label; unlike the `label` text key the value may hold ',' and '='.
func (c *config) setLabel(key, value string) error {
	k, err := cString("label key", key)
	if err != nil {
		return err
	}
	defer freeC(k)
	v, err := cString("label "+key, value)
	if err != nil {
		return err
	}
	defer freeC(v)
	var cerr *C.hb_error
	st := C.hb_config_set_label(c.ptr, k, v, &cerr)
	runtime.KeepAlive(c)
	return takeError(st, cerr)
}

// setAuthKey passes any bytes (a key need not be UTF-8) for the engine to judge. The copy
// lives in C memory (cgo may not keep Go memory) and is never NULL, also for an empty key:
// NULL would be a NULL-argument bug, while an empty key is the caller's config error.
func (c *config) setAuthKey(key []byte) error {
	p := C.malloc(C.size_t(len(key) + 1))
	if p == nil {
		return newError(ErrInternal, "out of memory copying the auth key")
	}
	defer func() {
		C.memset(p, 0, C.size_t(len(key)+1)) // the key is a secret: do not leave it behind
		C.free(p)
	}()
	if len(key) > 0 {
		C.memcpy(p, unsafe.Pointer(&key[0]), C.size_t(len(key)))
	}
	var cerr *C.hb_error
	st := C.hb_config_set_auth_key(c.ptr, (*C.uint8_t)(p), C.size_t(len(key)), &cerr)
	runtime.KeepAlive(c)
	return takeError(st, cerr)
}
