// Command gated is bench/bare's server behind Gatehouse's middleware: the
// same GET /v1/bookings body, through request ids, panic recovery, API-key
// authentication (in-memory store, warm cache), the scope guard, the
// in-memory rate limiter with its headers, and pagination headers. Beside
// bench/bare under wrk it isolates what the middleware costs from what the
// reference server's endpoint (SQL) costs. It prints the key it accepts.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/apikey"
	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
	"github.com/gatehouse-go/gatehouse/storage/memory"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "address")
	profile := flag.String("cpuprofile", "", "write a CPU profile here until SIGINT")
	flag.Parse()
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		go func() { <-stop; pprof.StopCPUProfile(); f.Close(); os.Exit(0) }()
	}
	ctx := context.Background()
	keys, err := apikey.New(memory.New(), apikey.Config{})
	if err != nil {
		log.Fatal(err)
	}
	secret, _, err := keys.Create(ctx, apikey.CreateParams{OrganisationID: "org", Scopes: []string{scope.BookingsRead}, RateLimit: "1000000000/h,100000000/m"})
	if err != nil {
		log.Fatal(err)
	}
	chain, err := gatehouse.NewChain(gatehouse.ChainConfig{}, keys)
	if err != nil {
		log.Fatal(err)
	}
	limits, err := ratelimit.New(ratelimit.NewMemory(ratelimit.MemoryConfig{}), ratelimit.Config{})
	if err != nil {
		log.Fatal(err)
	}
	guard := scope.MustRequire(scope.DefaultCatalog(), scope.BookingsRead)
	mux := http.NewServeMux()
	mux.Handle("GET /v1/bookings", guard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := paginate.FromRequest(r, paginate.Options{})
		if err != nil {
			apierror.Write(w, r, err)
			return
		}
		paginate.SetHeaders(w, r, p, 0, 0)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte("[]\n"))
	})))
	h := apierror.RequestID(apierror.Recover(chain.Handler(limits.Handler(mux))))
	fmt.Println("key", secret.Reveal())
	log.Fatal(http.ListenAndServe(*addr, h))
}
