// quickstart registers this process in etcd until SIGINT/SIGTERM, then deregisters.
//
//	go run ./examples/quickstart            # etcd at 127.0.0.1:2379
//	HEARTBEATER_ENDPOINT=etcd://127.0.0.1:23790/services go run ./examples/quickstart
package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"heartbeater"
)

func main() {
	endpoint := "etcd://127.0.0.1:2379/services"
	if e := os.Getenv("HEARTBEATER_ENDPOINT"); e != "" {
		endpoint = e
	}

	hb := heartbeater.NewClient(
		heartbeater.WithEndpoint(endpoint),
		heartbeater.WithTTL(15*time.Second),
		heartbeater.WithLabels(map[string]string{"region": "cn-east-1", "env": "prod"}),
	)
	if err := hb.Start(); err != nil {
		log.Fatal("failed to start heartbeat:", err)
	}
	defer hb.Stop() // graceful: sends the offline signal

	fmt.Println("registered; Ctrl-C to deregister")
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	fmt.Println("deregistering")
}
