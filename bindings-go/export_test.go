package heartbeater

import (
	"net"
	"testing"
)

// Test helpers shared with the external (package heartbeater_test) tests.

type EtcdServer = etcdServer

func StartEtcd(t testing.TB) EtcdServer                      { return startEtcd(t) }
func EtcdKeys(t testing.TB, e EtcdServer, p string) []string { return etcdKeys(t, e, p) }

func FreeTCPPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func HeartbeaterBin(t testing.TB) string { return heartbeaterBin(t) }
