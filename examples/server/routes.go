package main

import (
	"log/slog"
	"net/http"

	"github.com/gatehouse-go/gatehouse/apierror"
)

// newHandler builds the server's routes and middleware.
func newHandler(logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apierror.Write(w, r, apierror.NotFound(""))
	})
	var h http.Handler = mux
	h = apierror.Negotiate(h)
	h = apierror.Recoverer{Logger: logger}.Handler(h)
	h = apierror.RequestID(h)
	return h
}
