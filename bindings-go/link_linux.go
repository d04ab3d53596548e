//go:build linux

package heartbeater

// The one place that says how to link the engine. `make lib` builds lib/libheartbeater.a
// with cargo; the system libraries are the ones
// `cargo rustc -p hb-ffi --release --crate-type staticlib -- --print native-static-libs`
// reports on Linux.

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: ${SRCDIR}/lib/libheartbeater.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
*/
import "C"
