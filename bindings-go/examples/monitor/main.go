// monitor prints every peer transition seen on a UDP listen address, for Go clients and
// `heartbeater beat` alike, until SIGINT/SIGTERM.
//
//	go run ./examples/monitor -listen udp://127.0.0.1:7946
//	heartbeater beat --endpoint udp://127.0.0.1:7946 --service demo --id a --ttl 2s
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"heartbeater"
)

func main() {
	listen := flag.String("listen", "udp://127.0.0.1:7946", "where to listen for beats (port 0: any)")
	flag.Parse()

	m := heartbeater.NewMonitor(heartbeater.WithListen(*listen))
	if err := m.Start(); err != nil {
		log.Fatal("monitor:", err)
	}
	defer m.Stop()
	addrs, err := m.LocalAddrs()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on", addrs[0])

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	events := m.Events()
	for {
		select {
		case ev := <-events:
			fmt.Printf("%s %s/%s %s -> %s (%s)\n", ev.At.Format("15:04:05.000"), ev.Service, ev.Peer, ev.From, ev.To, ev.Reason)
		case <-sig:
			return
		}
	}
}
