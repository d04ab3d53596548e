package heartbeater

/*
#include <stdlib.h>
#include "heartbeater.h"
*/
import "C"

import (
	"sort"
	"unsafe"
)

// config owns one hb_config for the duration of a Start.
type config struct {
	ptr *C.hb_config
}

func newConfig() *config {
	return &config{ptr: C.hb_config_new()}
}

func (c *config) free() {
	C.hb_config_free(c.ptr)
	c.ptr = nil
}

// build applies the settings in order and returns the first precise error.
func buildConfig(s *settings) (*config, error) {
	cfg := newConfig()
	if cfg.ptr == nil {
		return nil, newError(ErrInternal, "hb_config_new returned NULL")
	}
	for _, st := range s.list {
		if err := st.apply(cfg); err != nil {
			cfg.free()
			return nil, err
		}
	}
	if s.labelsGiven {
		keys := make([]string, 0, len(s.labels))
		for k := range s.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// An empty WithLabels still replaces labels from the environment.
		if err := cfg.set("labels", ""); err != nil {
			cfg.free()
			return nil, err
		}
		for _, k := range keys {
			if err := cfg.setLabel(k, s.labels[k]); err != nil {
				cfg.free()
				return nil, err
			}
		}
	}
	return cfg, nil
}

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
	return takeError(C.hb_config_set(c.ptr, k, v, &cerr), cerr)
}

func (c *config) setString(field string, value string, set func(*C.char, **C.hb_error) C.hb_status) error {
	v, err := cString(field, value)
	if err != nil {
		return err
	}
	defer freeC(v)
	var cerr *C.hb_error
	return takeError(set(v, &cerr), cerr)
}

func (c *config) setService(name string) error {
	return c.setString("service", name, func(v *C.char, e **C.hb_error) C.hb_status {
		return C.hb_config_set_service(c.ptr, v, e)
	})
}

func (c *config) setInstanceID(id string) error {
	return c.setString("instance_id", id, func(v *C.char, e **C.hb_error) C.hb_status {
		return C.hb_config_set_instance_id(c.ptr, v, e)
	})
}

func (c *config) setDetector(name string) error {
	return c.setString("detector", name, func(v *C.char, e **C.hb_error) C.hb_status {
		return C.hb_config_set_detector(c.ptr, v, e)
	})
}

func (c *config) setTTLMillis(ms uint64) error {
	var cerr *C.hb_error
	return takeError(C.hb_config_set_ttl_ms(c.ptr, C.uint64_t(ms), &cerr), cerr)
}

func (c *config) setIntervalMillis(min, max uint64) error {
	var cerr *C.hb_error
	return takeError(C.hb_config_set_interval_ms(c.ptr, C.uint64_t(min), C.uint64_t(max), &cerr), cerr)
}

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
	return takeError(C.hb_config_set_label(c.ptr, k, v, &cerr), cerr)
}

func (c *config) setAuthKey(key []byte) error {
	// Copied into C memory: cgo forbids keeping Go memory, and the key must not be moved
	// around by the GC in the meantime anyway.
	var p unsafe.Pointer
	if len(key) > 0 {
		p = C.CBytes(key)
		defer C.free(p)
	}
	var cerr *C.hb_error
	return takeError(C.hb_config_set_auth_key(c.ptr, (*C.uint8_t)(p), C.size_t(len(key)), &cerr), cerr)
}
