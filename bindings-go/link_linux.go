//go:build linux

package heartbeater

// The one place that says how to link the engine. The module carries everything cgo needs:
// heartbeater.h (a copy of include/heartbeater.h, checked by `make header-check`) and
// libheartbeater.a, which `make -C bindings-go lib` builds with cargo and copies here. Both sit
// in this package directory so `go mod vendor` copies them along with the Go files. The system
// libraries are the ones `cargo rustc -p hb-ffi --release --crate-type staticlib -- --print
// native-static-libs` reports on Linux.

/*
#cgo CFLAGS: -I${SRCDIR}
#cgo LDFLAGS: ${SRCDIR}/libheartbeater.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
#if !__has_include("libheartbeater.a")
#error "heartbeater: libheartbeater.a is missing from the module directory: run 'make -C bindings-go lib' in the heartbeater checkout"
#endif
*/
import "C"
