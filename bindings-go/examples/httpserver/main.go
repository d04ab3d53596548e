// httpserver serves HTTP and stops its heartbeat inside http.Server's graceful shutdown,
// bounded by the same deadline (RegisterOnShutdown + Client.Shutdown).
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
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
	hb := heartbeater.NewClient(heartbeater.WithEndpoint(endpoint), heartbeater.WithService("httpserver"))
	if err := hb.Start(); err != nil {
		log.Fatal("failed to start heartbeat:", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	mux := http.NewServeMux()
	mux.Handle("/metrics", heartbeater.MetricsHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		// Fencing: refuse to act as the holder once the lease may have expired.
		if err := hb.Check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux}

	shutdownCtx := context.Background()
	srv.RegisterOnShutdown(func() {
		if err := hb.Shutdown(shutdownCtx); err != nil {
			log.Print("heartbeat shutdown: ", err)
		}
	})

	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()

	var cancel context.CancelFunc
	shutdownCtx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	// RegisterOnShutdown hooks run in their own goroutines; Shutdown(ctx) is idempotent,
	// so calling it here too waits for the goodbye before main returns.
	_ = hb.Shutdown(shutdownCtx)
}
