package heartbeater

/*
#include "heartbeater.h"
*/
import "C"

import (
	"net/http"
)

// MetricsText returns the engine's Prometheus metrics (all named heartbeater_*) in the
// text exposition format, for the whole process.
func MetricsText() (string, error) {
	var out *C.char
	var cerr *C.hb_error
	if err := takeError(C.hb_metrics_text(&out, &cerr), cerr); err != nil {
		return "", err
	}
	return goStringFree(out), nil
}

// MetricsHandler serves MetricsText at any path, e.g.
// http.Handle("/metrics", heartbeater.MetricsHandler()).
func MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		text, err := MetricsText()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(text))
	})
}
