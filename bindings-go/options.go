package heartbeater

import (
	"fmt"
	"log/slog"
	"time"
)

// Option configures a Client, Monitor or Watcher. Options are only recorded by the
// constructors; they are checked by the engine in Start, which returns the precise error
// (errors.Is(err, ErrConfig)).
type Option func(*settings)

// setting is one engine option, applied in the order given.
type setting struct {
	key   string // engine option key, for messages and the string setter
	apply func(cfg *config) error
}

type settings struct {
	list []setting
	// labels are applied as one set (WithLabels replaces, WithLabel adds).
	labels      map[string]string
	labelsGiven bool
	// Go-side options.
	eventBuffer int
	stopTimeout time.Duration
	logger      *slog.Logger
}

const (
	defaultEventBuffer = 1024
	// DefaultStopTimeout bounds Stop(): the goodbye is sent and waited for at most this long.
	DefaultStopTimeout = 2 * time.Second
)

func newSettings(opts []Option) *settings {
	s := &settings{eventBuffer: defaultEventBuffer, stopTimeout: DefaultStopTimeout}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	return s
}

func (s *settings) add(key string, apply func(cfg *config) error) {
	s.list = append(s.list, setting{key: key, apply: apply})
}

func (s *settings) addString(key, value string) {
	s.add(key, func(cfg *config) error { return cfg.set(key, value) })
}

// WithEndpoint says where to beat (Client) or what to watch (Watcher):
// "udp://host:port", "tcp://host:port", "etcd://host:port[,host:port]/prefix";
// several comma-separated. Default: $HEARTBEATER_ENDPOINT.
func WithEndpoint(endpoint string) Option {
	return func(s *settings) { s.addString("endpoint", endpoint) }
}

// WithListen says where a Monitor listens: "udp://127.0.0.1:7946", "tcp://...", several
// comma-separated. Port 0 picks a free port; see Monitor.LocalAddrs.
func WithListen(addr string) Option {
	return func(s *settings) { s.addString("listen", addr) }
}

// WithService names the service this client belongs to (default: the program's name).
func WithService(name string) Option {
	return func(s *settings) { s.add("service", func(cfg *config) error { return cfg.setService(name) }) }
}

// WithInstanceID names this instance (default: hostname-pid).
func WithInstanceID(id string) Option {
	return func(s *settings) { s.add("instance_id", func(cfg *config) error { return cfg.setInstanceID(id) }) }
}

// WithTTL is how long the registration outlives the last heartbeat (default 15s; at least
// 2s with etcd). Monitors and watchers presume a peer dead after about this long.
func WithTTL(ttl time.Duration) Option {
	return func(s *settings) {
		s.add("ttl", func(cfg *config) error {
			ms, err := durationMillis("ttl", ttl)
			if err != nil {
				return err
			}
			return cfg.setTTLMillis(ms)
		})
	}
}

// WithInterval bounds the adaptive beat interval (default 1s..30s, never above TTL/3).
// min == max gives a fixed interval.
func WithInterval(min, max time.Duration) Option {
	return func(s *settings) {
		s.add("interval", func(cfg *config) error {
			lo, err := durationMillis("interval min", min)
			if err != nil {
				return err
			}
			hi, err := durationMillis("interval max", max)
			if err != nil {
				return err
			}
			return cfg.setIntervalMillis(lo, hi)
		})
	}
}

// WithLabels replaces the labels sent with every beat and stored in the registration.
func WithLabels(labels map[string]string) Option {
	return func(s *settings) {
		s.labels = make(map[string]string, len(labels))
		for k, v := range labels {
			s.labels[k] = v
		}
		s.labelsGiven = true
	}
}

// WithLabel adds one label.
func WithLabel(key, value string) Option {
	return func(s *settings) {
		if s.labels == nil {
			s.labels = map[string]string{}
		}
		s.labels[key] = value
		s.labelsGiven = true
	}
}

// WithAuthKey sets the shared key (at least 16 bytes) that signs every frame (HMAC-SHA256).
// Clients and monitors must use the same key.
func WithAuthKey(key []byte) Option {
	k := append([]byte(nil), key...)
	return func(s *settings) { s.add("auth_key", func(cfg *config) error { return cfg.setAuthKey(k) }) }
}

// WithDetector picks a Monitor's failure detector: "adaptive" (default) or "phi".
func WithDetector(name string) Option {
	return func(s *settings) { s.add("detector", func(cfg *config) error { return cfg.setDetector(name) }) }
}

// WithOption sets any engine option by its key (the keys of hb-core config::OPTION_KEYS,
// e.g. "connect_timeout" = "3s", "metrics_addr" = "127.0.0.1:9464", "ack" = "true").
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

// WithStopTimeout changes the bound used by Stop() (default 2s). Shutdown(ctx) uses the
// context's deadline instead.
func WithStopTimeout(d time.Duration) Option {
	return func(s *settings) {
		if d >= 0 {
			s.stopTimeout = d
		}
	}
}

// WithLogger sets where recovered callback panics and other reports go (default
// slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.logger = l }
}

func durationMillis(field string, d time.Duration) (uint64, error) {
	if d <= 0 {
		return 0, newError(ErrConfig, fmt.Sprintf("%s %s: expected a positive duration", field, d))
	}
	if d%time.Millisecond != 0 {
		return 0, newError(ErrConfig, fmt.Sprintf("%s %s: expected whole milliseconds", field, d))
	}
	return uint64(d / time.Millisecond), nil
}
