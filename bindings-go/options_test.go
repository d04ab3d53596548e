package heartbeater

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestOptionErrorsArePreciseAndMatchErrConfig(t *testing.T) {
	cases := []struct {
		name string
		opts []Option
		want []string // substrings of the message
	}{
		{"bad endpoint", []Option{WithEndpoint("etcd//x")}, []string{"endpoint", `"etcd//x"`, "expected"}},
		{"unknown scheme", []Option{WithEndpoint("http://127.0.0.1:80")}, []string{"endpoint", "unknown scheme"}},
		{"port zero", []Option{WithEndpoint("udp://127.0.0.1:0")}, []string{"endpoint", "port from 1 to 65535"}},
		{"negative ttl", []Option{WithEndpoint("udp://127.0.0.1:9"), WithTTL(-time.Second)}, []string{`ttl "-1s": expected a duration like 200ms, 15s, 1.5s, 2m or 1h`}},
		{"ttl too short", []Option{WithEndpoint("udp://127.0.0.1:9"), WithTTL(10 * time.Millisecond)}, []string{`ttl "10ms": expected a duration from 300ms to 24h`}},
		{"sub-millisecond ttl", []Option{WithEndpoint("udp://127.0.0.1:9"), WithTTL(1500 * time.Microsecond)}, []string{`ttl "1.5ms": expected a duration from 300ms to 24h`}},
		{"interval min > max", []Option{WithEndpoint("udp://127.0.0.1:9"), WithInterval(2*time.Second, time.Second)}, []string{"interval"}},
		{"bad label key", []Option{WithEndpoint("udp://127.0.0.1:9"), WithLabels(map[string]string{"bad key": "v"})}, []string{"label key", "bad key"}},
		{"short auth key", []Option{WithEndpoint("udp://127.0.0.1:9"), WithAuthKey([]byte("short"))}, []string{"auth_key", "at least 16 bytes"}},
		{"bad detector", []Option{WithEndpoint("udp://127.0.0.1:9"), WithDetector("magic")}, []string{"detector", "magic"}},
		{"service with slash", []Option{WithEndpoint("udp://127.0.0.1:9"), WithService("a/b")}, []string{"service", "a/b"}},
		{"NUL in instance id", []Option{WithEndpoint("udp://127.0.0.1:9"), WithInstanceID("a\x00b")}, []string{"instance_id", "NUL"}},
		{"bad false dead rate", []Option{WithEndpoint("udp://127.0.0.1:9"), WithFalseDeadRate("1/fortnight")}, []string{`false_dead_rate "1/fortnight": expected a rate per peer as COUNT/PERIOD`}},
		{"suspect rarer than dead", []Option{WithEndpoint("udp://127.0.0.1:9"), WithFalseDeadRate("1/h")}, []string{`false_suspect_rate "1/d (the default)": expected at least false_dead_rate (1/h)`}},
		{"unknown option key", []Option{WithEndpoint("udp://127.0.0.1:9"), WithOption("colour", "blue")}, []string{"colour", "one of"}},
		{"tls without its key", []Option{WithEndpoint("tls://127.0.0.1:9"), WithOption("tls_ca_file", "/ca.pem"), WithOption("tls_cert_file", "/c.pem")}, []string{`tls_key_file "": expected a PEM file of this side's private key: tls://127.0.0.1:9 needs it`}},
		{"tls files unreadable", []Option{WithEndpoint("tls://127.0.0.1:9"), WithTLS("/nonexistent/ca.pem", "/c.pem", "/k.pem")}, []string{`tls_ca_file "/nonexistent/ca.pem": expected a readable PEM file`}},
		{"bad tls server name", []Option{WithEndpoint("tls://127.0.0.1:9"), WithTLSServerName("not a name")}, []string{`tls_server_name "not a name": expected a DNS name or IP address`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(tc.opts...)
			defer c.Stop()
			err := c.Start()
			if err == nil {
				t.Fatalf("Start succeeded, want a configuration error")
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("errors.Is(%v, ErrConfig) = false", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var he *Error
			if !errors.As(err, &he) || he.Kind != ErrConfig {
				t.Errorf("errors.As(*Error) failed or wrong kind: %#v", err)
			}
			if errors.Is(err, ErrConnect) {
				t.Errorf("a config error must not match ErrConnect")
			}
		})
	}
}

// Options the engine rejects leave no engine handle: every call reports the engine's
// error again (the options do not change), and Stop, with nothing to stop, is a no-op
// that ends the Events() channel.
func TestRejectedOptionsStayRejectedAndStopIsANoOp(t *testing.T) {
	c := NewClient(WithEndpoint("nope"))
	for i := 0; i < 2; i++ {
		if err := c.Start(); !errors.Is(err, ErrConfig) {
			t.Fatalf("Start #%d = %v, want ErrConfig", i, err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop of a client whose options were rejected: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := c.Start(); !errors.Is(err, ErrConfig) {
		t.Fatalf("Start after Stop = %v, want the same ErrConfig", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Fatalf("Events() not closed after Stop")
	}
	if err := c.Check(); !errors.Is(err, ErrConfig) {
		t.Fatalf("Check = %v, want ErrConfig", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestWrappedErrorsStillMatch(t *testing.T) {
	err := NewClient(WithTTL(0)).Start()
	wrapped := errors.Join(errors.New("context"), err)
	if !errors.Is(wrapped, ErrConfig) {
		t.Fatalf("wrapped %v does not match ErrConfig", wrapped)
	}
}

func TestVersion(t *testing.T) {
	v := Version()
	if v == "" || strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q, want x.y.z", v)
	}
}

func TestEtcdSecurityOptionsAreCheckedTogether(t *testing.T) {
	c := NewClient(WithEndpoint("etcd://127.0.0.1:9/services"), WithService("api"),
		WithEtcdTLS("", "/tmp/client.pem", ""))
	err := c.Start()
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "etcd_cert_file and etcd_key_file set together") {
		t.Fatalf("Start with a certificate and no key = %v, want ErrConfig naming both", err)
	}
	// Made, its start refused: it holds an engine handle (and a pump goroutine) until
	// closed, which goleak checks at the end of the run.
	w := NewWatcher("etcd://127.0.0.1:9/services", WithEtcdAuth("root", ""))
	defer w.Close()
	if err := w.Start(); err == nil {
		_ = w.Stop()
		t.Fatal("Watcher with an empty password against a closed port started")
	}
}
