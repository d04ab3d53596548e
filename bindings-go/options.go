package heartbeater

import (
	"log/slog"
	"sort"
	"strconv"
	"time"
)

// Option configures a Client, Monitor or Watcher. Options are only recorded by the
// constructors and handed to the engine, as text or bytes, when the handle is made (by
// Start or the first call that needs it). The engine judges every value: an error
// (errors.Is(err, ErrConfig)) carries the engine's own message, the same in every language.
type Option func(*settings)

type settings struct {
	// list holds the engine options, applied in the order given.
	list []func(cfg *config) error
	// Go-side options.
	eventBuffer int
	logger      *slog.Logger
}

const (
	defaultEventBuffer = 1024
	// DefaultStopTimeout is the engine's default stop_timeout, which bounds Stop(): the
	// goodbye is sent and waited for at most this long. For reading only: the engine
	// applies its own default.
	DefaultStopTimeout = 2 * time.Second
)

func newSettings(opts []Option) *settings {
	s := &settings{eventBuffer: defaultEventBuffer}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

func (s *settings) add(apply func(cfg *config) error) {
	s.list = append(s.list, apply)
}

func (s *settings) addString(key, value string) {
	s.add(func(cfg *config) error { return cfg.set(key, value) })
}

// WithEndpoint says where to beat (Client) or what to watch (Watcher):
// "udp://host:port", "tcp://host:port", "tls://host:port" (see WithTLS),
// "etcd://host:port[,host:port]/prefix";
// several comma-separated. Default: $HEARTBEATER_ENDPOINT.
func WithEndpoint(endpoint string) Option {
	return func(s *settings) { s.addString("endpoint", endpoint) }
}

// WithListen says where a Monitor listens: "udp://127.0.0.1:7946", "tcp://...", "tls://..."
// (see WithTLS), several
// comma-separated. Port 0 picks a free port; see Monitor.LocalAddrs.
func WithListen(addr string) Option {
	return func(s *settings) { s.addString("listen", addr) }
}

// WithService names the service this client belongs to (default: the program's name).
func WithService(name string) Option {
	return func(s *settings) { s.addString("service", name) }
}

// WithInstanceID names this instance (default: hostname-pid).
func WithInstanceID(id string) Option {
	return func(s *settings) { s.addString("instance_id", id) }
}

// WithTTL is how long the registration outlives the last heartbeat (default 15s; the
// engine accepts 300ms to 24h, at least 2s with etcd). Monitors and watchers presume a
// peer dead after about this long.
func WithTTL(ttl time.Duration) Option {
	return func(s *settings) { s.addString("ttl", durationText(ttl)) }
}

// WithInterval bounds the adaptive beat interval (default 1s..30s, never above TTL/3).
// min == max gives a fixed interval.
func WithInterval(min, max time.Duration) Option {
	text := durationText(min)
	if min != max {
		text += ".." + durationText(max)
	}
	return func(s *settings) { s.addString("interval", text) }
}

// WithLabels replaces the labels sent with every beat and stored in the registration
// (also those from the environment; an empty map clears them).
func WithLabels(labels map[string]string) Option {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the engine reports the first bad label: make that one deterministic
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = labels[k]
	}
	return func(s *settings) {
		s.addString("labels", "")
		for i, k := range keys {
			k, v := k, values[i]
			s.add(func(cfg *config) error { return cfg.setLabel(k, v) })
		}
	}
}

// WithLabel adds one label (the value may contain ',' and '=').
func WithLabel(key, value string) Option {
	return func(s *settings) { s.add(func(cfg *config) error { return cfg.setLabel(key, value) }) }
}

// WithAuthKey sets the shared key (at least 16 bytes) that signs every frame (HMAC-SHA256).
// Clients and monitors must use the same key.
func WithAuthKey(key []byte) Option {
	k := append([]byte(nil), key...)
	return func(s *settings) { s.add(func(cfg *config) error { return cfg.setAuthKey(k) }) }
}

// WithDetector picks a Monitor's failure detector: "adaptive" (default) or "phi".
func WithDetector(name string) Option {
	return func(s *settings) { s.addString("detector", name) }
}

// WithFalseDeadRate sets how many false "dead" verdicts the adaptive detector is placed to
// make per peer, as "COUNT/PERIOD": "1/2y" (the default: one every two years), "1/y", "3/d".
func WithFalseDeadRate(rate string) Option {
	return func(s *settings) { s.addString("false_dead_rate", rate) }
}

// WithFalseSuspectRate sets the adaptive detector's false "suspect" target per peer, as
// WithFalseDeadRate does for "dead" (default "1/d"); it may not be rarer than the dead one.
func WithFalseSuspectRate(rate string) Option {
	return func(s *settings) { s.addString("false_suspect_rate", rate) }
}

// WithOption sets any engine option by its key (the keys of hb-core config::OPTION_KEYS,
// e.g. "connect_timeout" = "3s", "metrics_addr" = "127.0.0.1:9464", "ack" = "true"; a
// Monitor's HTTP API: "http_addr" = "127.0.0.1:9465", "http_token_file"; a Client's own
// /healthz: "health_addr" = "127.0.0.1:8086", docs/http.md).
func WithOption(key, value string) Option {
	return func(s *settings) { s.addString(key, value) }
}

// WithEtcdTLS connects to etcd over TLS: caFile verifies the server; certFile and keyFile
// (both or neither) authenticate this client. Paths to PEM files; "" leaves one unset.
func WithEtcdTLS(caFile, certFile, keyFile string) Option {
	return func(s *settings) {
		for _, kv := range [][2]string{{"etcd_ca_file", caFile}, {"etcd_cert_file", certFile}, {"etcd_key_file", keyFile}} {
			if kv[1] != "" {
				s.addString(kv[0], kv[1])
			}
		}
	}
}

// WithTLS gives a tls:// endpoint (Client) or listener (Monitor) its PEM files, all three
// required: caFile is the CA that signs the other side's certificates, certFile and keyFile
// are this side's own. A Client's certificate must name its instance id as a DNS-name or URI
// SAN (docs/protocol.md, "TLS connections"). The files are read again when they change.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(s *settings) {
		s.addString("tls_ca_file", caFile)
		s.addString("tls_cert_file", certFile)
		s.addString("tls_key_file", keyFile)
	}
}

// WithTLSServerName is the name a Client checks the monitor's certificate for, when that is
// not the endpoint's host (a DNS name or IP address).
func WithTLSServerName(name string) Option {
	return func(s *settings) { s.addString("tls_server_name", name) }
}

// WithEtcdAuth logs in to etcd with a username and password.
func WithEtcdAuth(username, password string) Option {
	return func(s *settings) {
		s.addString("etcd_username", username)
		s.addString("etcd_password", password)
	}
}

// WithEventBuffer sets the capacity of the Events() channel (default 1024). Events wait
// there from Start on, also before the first Events() call. When the channel is full, new
// events are dropped for it, and counted (Stats().EventsDropped) once Events() has been
// called; OnEvent callbacks still see every event.
func WithEventBuffer(n int) Option {
	return func(s *settings) {
		if n < 1 {
			n = 1
		}
		s.eventBuffer = n
	}
}

// WithStopTimeout sets the engine's stop_timeout, the bound of Stop() (default 2s).
// Shutdown(ctx) uses the context's deadline instead.
func WithStopTimeout(d time.Duration) Option {
	return func(s *settings) { s.addString("stop_timeout", durationText(d)) }
}

// WithLogger sets where recovered callback panics and other reports go (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.logger = l }
}

// durationText writes d in the engine's duration syntax (one number and one unit), so the
// engine parses and judges it, and its message quotes what Go would print: "-1s",
// "200ms", "1.5s", "2m", "90s". No value is judged here.
func durationText(d time.Duration) string {
	switch {
	case d > -time.Minute && d < time.Minute:
		return d.String() // "-1s", "1.5s", "200ms", "1.5ms", "1µs", "0s"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
}
