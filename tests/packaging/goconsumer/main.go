// A module outside the heartbeater repository: a Monitor and a Client over loopback UDP,
// exiting 0 once the monitor has seen the client alive.
package main

import (
	"fmt"
	"os"
	"time"

	"heartbeater"
)

func main() {
	mon := heartbeater.NewMonitor(heartbeater.WithListen("udp://127.0.0.1:0"))
	if err := mon.Start(); err != nil {
		fail("monitor start: %v", err)
	}
	defer mon.Close()
	addrs, err := mon.LocalAddrs()
	if err != nil || len(addrs) == 0 {
		fail("monitor addrs: %v %v", addrs, err)
	}
	cli := heartbeater.NewClient(heartbeater.WithEndpoint(addrs[0]), heartbeater.WithService("goconsumer"))
	if err := cli.Start(); err != nil {
		fail("client start: %v", err)
	}
	defer cli.Close()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-mon.Events():
			if ev.Service == "goconsumer" && ev.To == heartbeater.StateAlive {
				fmt.Println("goconsumer: monitor saw", ev.Peer, "alive")
				return
			}
		case <-deadline:
			fail("no alive event within 30 s")
		}
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "goconsumer: "+format+"\n", args...)
	os.Exit(1)
}
