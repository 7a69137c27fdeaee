// Command bare is the baseline of bench/load.sh: a plain net/http server
// answering GET /v1/bookings with the same JSON body as the reference
// server's empty sandbox, and nothing else (no authentication, limits or
// headers). With -headers it also sets, with constant values, the response
// headers Gatehouse's middleware sets (X-Request-Id, X-RateLimit-*,
// X-Pagination-*, Link): the floor for a server sending what Gatehouse
// sends. With -seed-headers it sets only the seven the seeds name
// (X-RateLimit-*, X-Pagination-*): with Content-Type eight keys, the most
// a Go map holds before it grows, the floor for any server sending what
// the seeds ask for.
package main

import (
	"flag"
	"log"
	"net/http"
)

var headers = [][2]string{{"X-Request-Id", "9f3c2a7d41e0b65c8d2f1a0e7b3c4d5e"}, {"X-Ratelimit-Limit", "100000000"}, {"X-Ratelimit-Remaining", "99999999"},
	{"X-Ratelimit-Reset", "1795860000"}, {"X-Pagination-Per-Page", "25"}, {"X-Pagination-Current-Page", "1"}, {"X-Pagination-Total-Pages", "0"},
	{"X-Pagination-Total-Entries", "0"},
	{"Link", `</v1/bookings?offset=0&limit=25>; rel="first", </v1/bookings?offset=0&limit=25>; rel="last"`}}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "address")
	withHeaders := flag.Bool("headers", false, "also set the headers Gatehouse sets, with constant values")
	seedHeaders := flag.Bool("seed-headers", false, "also set the seven headers the seeds name, with constant values")
	flag.Parse()
	set := headers[:0]
	switch {
	case *withHeaders:
		set = headers
	case *seedHeaders:
		set = headers[1 : len(headers)-1] // not X-Request-Id, not Link
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bookings", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range set {
			h.Set(kv[0], kv[1])
		}
		h.Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte("[]\n"))
	})
	log.Fatal(http.ListenAndServe(*addr, mux))
}
