package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-go/gatehouse/internal/testenv"
	"github.com/gatehouse-go/gatehouse/storage"
	"github.com/gatehouse-go/gatehouse/storage/memory"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

// BenchmarkDeliveries enqueues b.N events and runs one dispatcher (16
// workers) until a local receiver has them all; it reports deliveries per
// second and the enqueue-to-receipt latency (p50, p99).
func BenchmarkDeliveries(b *testing.B) {
	stores := map[string]func(b *testing.B) storage.Store{
		"memory": func(*testing.B) storage.Store { return memory.New() },
		"sqlite": func(b *testing.B) storage.Store {
			s, err := sqlstore.Open(b.Context(), "sqlite:"+filepath.Join(b.TempDir(), "w.db"), sqlstore.Config{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			return s
		},
		"postgres": func(b *testing.B) storage.Store {
			s, err := sqlstore.Open(b.Context(), testenv.Postgres(b), sqlstore.Config{TablePrefix: testenv.Name("wb") + "_"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(b.Context()); err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, name := range []string{"memory", "sqlite", "postgres"} {
		b.Run(name, func(b *testing.B) {
			st := stores[name](b)
			var mu sync.Mutex
			var lat []time.Duration
			sent := map[string]time.Time{}
			// Closed when every one of the b.N events has arrived once. (Not
			// when sent is empty: a receiver that keeps up with the producer
			// empties it many times, which closed done early and twice.)
			remaining := b.N
			done := make(chan struct{})
			rv := newReceiver(&testing.T{}, func(int, http.ResponseWriter) {})
			rv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				if t0, ok := sent[r.Header.Get("webhook-id")]; ok {
					lat = append(lat, time.Since(t0))
					delete(sent, r.Header.Get("webhook-id"))
					if remaining--; remaining == 0 {
						close(done)
					}
				}
			})
			mgr, _ := webhook.New(st, webhook.Config{Events: events, Guard: loopback})
			if _, err := mgr.Create(b.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: rv.srv.URL, Events: []string{"*"}}); err != nil {
				b.Fatal(err)
			}
			d, _ := webhook.NewDispatcher(st, mgr, webhook.DispatcherConfig{Guard: loopback, Workers: 16,
				PerEndpoint:  16, // one endpoint: every worker may serve it, so the figure is the outbox's
				PollInterval: 5 * time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = d.Run(ctx) }()
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				id := storage.NewID()
				mu.Lock()
				sent[id] = time.Now()
				mu.Unlock()
				if err := mgr.Enqueue(b.Context(), webhook.Event{ID: id, OrganisationID: "org", Type: "booking.created", Data: map[string]int{"n": 1}}); err != nil {
					b.Fatal(err)
				}
			}
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkDeliveryWorkers: deliveries per second from the memory outbox
// with 1, 4 and 16 workers, to a receiver that takes 2 ms to answer (as a
// real endpoint does), so the worker pool is what scales.
func BenchmarkDeliveryWorkers(b *testing.B) {
	for _, workers := range []int{1, 4, 16} {
		b.Run(fmt.Sprint(workers), func(b *testing.B) {
			st := memory.New()
			var mu sync.Mutex
			left := b.N
			done := make(chan struct{})
			rv := newReceiver(&testing.T{}, func(int, http.ResponseWriter) {})
			rv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				defer mu.Unlock()
				if left--; left == 0 {
					close(done)
				}
			})
			mgr, _ := webhook.New(st, webhook.Config{Events: events, Guard: loopback})
			if _, err := mgr.Create(b.Context(), webhook.SubscriptionParams{OrganisationID: "org", URL: rv.srv.URL, Events: []string{"*"}}); err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if err := mgr.Enqueue(b.Context(), webhook.Event{OrganisationID: "org", Type: "booking.created", Data: 1}); err != nil {
					b.Fatal(err)
				}
			}
			d, _ := webhook.NewDispatcher(st, mgr, webhook.DispatcherConfig{Guard: loopback, Workers: workers,
				PerEndpoint:  workers, // one endpoint: the pool is what scales
				PollInterval: time.Millisecond})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			go func() { _ = d.Run(ctx) }()
			<-done
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
