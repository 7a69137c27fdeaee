// Command bare is the baseline of bench/load.sh: a plain net/http server
// answering GET /v1/bookings with the same JSON body as the reference
// server's empty sandbox, and nothing else (no authentication, limits or
// headers).
package main

import (
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bookings", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte("[]\n"))
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
