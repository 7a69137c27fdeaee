// Command server is Gatehouse's reference server: the API that both seed
// documents describe — OAuth 2.0, API keys, scopes, rate limits,
// pagination, the error envelope and signed webhooks — served by the
// Gatehouse packages.
//
//	go run ./examples/server                       # 127.0.0.1:8080, SQLite in ./gatehouse.db
//	go run ./examples/server -db postgres://… -redis redis://…
//	go run ./examples/server admin org create --prefix acme --name "Acme Ltd"
//
// Every flag has a GATEHOUSE_* environment variable (GATEHOUSE_ADDR …).
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/oauth"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/storage/sqlstore"
	"github.com/gatehouse-go/gatehouse/webhook"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

type options struct {
	addr, db, redis, redisFailure, issuer, tlsCert, tlsKey, webhookAllow, corsOrigins, trustedProxies, metricsAddr string
	insecureHTTP, jwt, allowMissingState                                                                           bool
	refreshGrace, requestTimeout, cacheTTL                                                                         time.Duration
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func commonFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.db, "db", envOr("GATEHOUSE_DB", "sqlite:gatehouse.db"), "database: sqlite:PATH or a postgres:// URL (GATEHOUSE_DB)")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "admin" {
		return runAdmin(ctx, args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	commonFlags(fs, &o)
	fs.StringVar(&o.addr, "addr", envOr("GATEHOUSE_ADDR", "127.0.0.1:8080"), "address to listen on (GATEHOUSE_ADDR)")
	fs.StringVar(&o.redis, "redis", envOr("GATEHOUSE_REDIS", ""), "redis:// URL for rate limits shared across instances (GATEHOUSE_REDIS); read and write timeouts 500 ms unless the URL sets read_timeout, write_timeout")
	fs.StringVar(&o.redisFailure, "redis-failure", envOr("GATEHOUSE_REDIS_FAILURE", "degrade"),
		"while Redis is down: degrade (per-instance limits in memory), open (admit all) or closed (503) (GATEHOUSE_REDIS_FAILURE)")
	fs.StringVar(&o.issuer, "issuer", envOr("GATEHOUSE_ISSUER", ""), "public base URL (GATEHOUSE_ISSUER); default http(s)://ADDR")
	fs.StringVar(&o.tlsCert, "tls-cert", envOr("GATEHOUSE_TLS_CERT", ""), "TLS certificate file (GATEHOUSE_TLS_CERT)")
	fs.StringVar(&o.tlsKey, "tls-key", envOr("GATEHOUSE_TLS_KEY", ""), "TLS key file (GATEHOUSE_TLS_KEY)")
	fs.StringVar(&o.webhookAllow, "webhook-allow", envOr("GATEHOUSE_WEBHOOK_ALLOW", ""), "comma-separated CIDRs webhooks may reach despite the SSRF guard (GATEHOUSE_WEBHOOK_ALLOW)")
	fs.StringVar(&o.corsOrigins, "cors-origins", envOr("GATEHOUSE_CORS_ORIGINS", ""),
		"comma-separated browser origins (https://app.example.com) or * that may call /v1 and /oauth/token with a bearer token (GATEHOUSE_CORS_ORIGINS); default none")
	fs.StringVar(&o.trustedProxies, "trusted-proxies", envOr("GATEHOUSE_TRUSTED_PROXIES", ""),
		"comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client, for per-client limits and logs (GATEHOUSE_TRUSTED_PROXIES); default none")
	fs.StringVar(&o.metricsAddr, "metrics-addr", envOr("GATEHOUSE_METRICS_ADDR", ""),
		"address of a separate listener for GET /metrics, kept off the public API address, e.g. 127.0.0.1:9090 (GATEHOUSE_METRICS_ADDR); default: no metrics")
	fs.BoolVar(&o.jwt, "jwt", envOr("GATEHOUSE_JWT", "") == "true",
		"issue RFC 9068 JWT access tokens, signed by keys every instance on the database shares, or by GATEHOUSE_JWT_KEYS (GATEHOUSE_JWT)")
	fs.BoolVar(&o.insecureHTTP, "insecure-http", envOr("GATEHOUSE_INSECURE_HTTP", "") == "true", "serve plain HTTP on a non-loopback address (GATEHOUSE_INSECURE_HTTP)")
	fs.BoolVar(&o.allowMissingState, "allow-missing-state", envOr("GATEHOUSE_ALLOW_MISSING_STATE", "") == "true",
		"accept authorization requests without state, as TidyHQ's documented URLs send them; such clients have no CSRF protection on their redirect unless they use PKCE (GATEHOUSE_ALLOW_MISSING_STATE)")
	refreshGrace := envOr("GATEHOUSE_REFRESH_GRACE", "0s")
	fs.StringVar(&refreshGrace, "refresh-grace", refreshGrace,
		"how long a used refresh token may be used again, for a client's retry (GATEHOUSE_REFRESH_GRACE), e.g. 10s; at most 5m; default 0: reuse revokes the grant")
	requestTimeout := envOr("GATEHOUSE_REQUEST_TIMEOUT", "10s")
	fs.StringVar(&requestTimeout, "request-timeout", requestTimeout,
		"how long a request may wait on the database before it is answered 503 (GATEHOUSE_REQUEST_TIMEOUT), from 1s to 50s")
	cacheTTL := envOr("GATEHOUSE_CACHE_TTL", "5s")
	fs.StringVar(&cacheTTL, "cache-ttl", cacheTTL,
		"how long a verified API key or access token is trusted before it is read again (GATEHOUSE_CACHE_TTL), from 1s to 1h; revocations reach every instance at once through the database, this bounds how late one does if that message is lost")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var perr error
	if o.cacheTTL, perr = time.ParseDuration(cacheTTL); perr != nil || o.cacheTTL < time.Second || o.cacheTTL > time.Hour {
		return fmt.Errorf("-cache-ttl: %q is not a duration from 1s to 1h", cacheTTL)
	}
	if o.requestTimeout, perr = time.ParseDuration(requestTimeout); perr != nil || o.requestTimeout < time.Second || o.requestTimeout > 50*time.Second {
		return fmt.Errorf("-request-timeout: %q is not a duration from 1s to 50s", requestTimeout)
	}
	if o.refreshGrace, perr = time.ParseDuration(refreshGrace); perr != nil || o.refreshGrace < 0 || o.refreshGrace > oauth.MaxRefreshReuseGrace {
		return fmt.Errorf("-refresh-grace: %q is not a duration from 0s to %v", refreshGrace, oauth.MaxRefreshReuseGrace)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	useTLS := o.tlsCert != "" || o.tlsKey != ""
	if useTLS && (o.tlsCert == "" || o.tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	if !useTLS && !o.insecureHTTP && !loopbackHost(host) {
		return errors.New("HTTPS only: without -tls-cert/-tls-key the server listens on loopback addresses only; pass -insecure-http to serve plain HTTP elsewhere (behind a TLS proxy)")
	}
	allow, err := parsePrefixes("-webhook-allow", o.webhookAllow)
	if err != nil {
		return err
	}
	guard := webhook.Guard{Allow: allow}
	proxies, err := parsePrefixes("-trusted-proxies", o.trustedProxies)
	if err != nil {
		return err
	}
	corsPolicy, err := parseCORS(o.corsOrigins)
	if err != nil {
		return err
	}

	store, err := openStore(ctx, o.db, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	mode, ok := map[string]ratelimit.FailureMode{"degrade": ratelimit.Degrade, "open": ratelimit.FailOpen, "closed": ratelimit.FailClosed}[o.redisFailure]
	if !ok {
		return fmt.Errorf("-redis-failure: %q is not degrade, open or closed", o.redisFailure)
	}
	var limiter ratelimit.Limiter = ratelimit.NewMemory(ratelimit.MemoryConfig{})
	if o.redis != "" {
		opt, err := redis.ParseURL(o.redis)
		if err != nil {
			return fmt.Errorf("-redis: %w", err)
		}
		// A rate-limit decision that waits on a hung Redis holds up the
		// request: past half a second the failure mode decides instead
		// (the URL's read_timeout and write_timeout, when given, win).
		if opt.ReadTimeout == 0 {
			opt.ReadTimeout = 500 * time.Millisecond
		}
		if opt.WriteTimeout == 0 {
			opt.WriteTimeout = 500 * time.Millisecond
		}
		if opt.DialTimeout == 0 {
			opt.DialTimeout = 2 * time.Second
		}
		rc := redis.NewClient(opt)
		defer rc.Close()
		rl, err := ratelimit.NewRedis(rc, ratelimit.RedisConfig{})
		if err != nil {
			return err
		}
		limiter = ratelimit.NewFailover(rl, ratelimit.FailoverConfig{Mode: mode, Logger: logger})
	}

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	if o.issuer == "" {
		o.issuer = base
	}
	secret, err := serverSecret(ctx, store.DB(), store.Dialect(), os.Getenv("GATEHOUSE_SECRET"))
	if err != nil {
		return fmt.Errorf("token secret: %w", err)
	}
	var keys *oauth.KeySet
	if o.jwt {
		if keys, err = jwtKeys(ctx, store.DB(), store.Dialect(), os.Getenv("GATEHOUSE_JWT_KEYS")); err != nil {
			return fmt.Errorf("JWT keys: %w", err)
		}
		logger.Info("JWT access tokens", "keys", keys)
	}
	// Cookies go over plain HTTP only when the public URL itself is http:
	// behind a TLS-terminating proxy (-insecure-http, an https -issuer) the
	// browser speaks HTTPS, and a session cookie without Secure would be
	// sent in clear to any http:// URL of the host.
	insecureCookies := !useTLS && !strings.HasPrefix(o.issuer, "https://")
	a, err := newApp(ctx, store, appConfig{Issuer: o.issuer, Secret: secret, Limiter: limiter, WebhookAllow: guard, Logger: logger, Insecure: insecureCookies, CORS: corsPolicy, TrustedProxies: proxies,
		JWTKeys: keys, RefreshReuseGrace: o.refreshGrace, AllowMissingState: o.allowMissingState, CacheTTL: o.cacheTTL})
	if err != nil {
		return err
	}
	if demo, err := a.seedDemo(ctx, o.issuer+"/callback"); err != nil {
		return fmt.Errorf("demo data: %w", err)
	} else if demo != nil {
		demo.print(stdout, o.issuer)
	}
	h, err := a.handler()
	if err != nil {
		return err
	}
	// A request waiting on a database that hangs is answered 503 when
	// its deadline passes, not held for as long as its client waits.
	h = apierror.Deadline(o.requestTimeout)(h)
	if useTLS {
		next := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
			next.ServeHTTP(w, r)
		})
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         &tls.Config{MinVersion: tls.VersionTLS12},
	}

	// Metrics are for the operator, not the API's clients: they count
	// requests, failures and deliveries, so they get a listener of their
	// own (internal or loopback), never a path on the public address.
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if o.metricsAddr != "" {
		if metricsLn, err = net.Listen("tcp", o.metricsAddr); err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.handler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: srv.ErrorLog}
	}

	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	dispatched := make(chan struct{})
	go func() { _ = a.dispatch.Run(dispatchCtx); close(dispatched) }()
	go a.sweepExpired(dispatchCtx, 10*time.Minute)

	if metricsSrv != nil {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", metricsLn.Addr())
		go func() { _ = metricsSrv.Serve(metricsLn) }()
		defer metricsSrv.Close()
	}
	fmt.Fprintf(stdout, "gatehouse listening on %s\n", base)
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, o.tlsCert, o.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		stopDispatch()
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	stopDispatch() // deliveries in flight finish
	<-dispatched
	if ferr := a.keys.Close(shutdownCtx); ferr != nil {
		logger.Error("flushing key usage failed", "err", ferr)
	}
	if err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.IsLoopback()
}

// parsePrefixes reads a flag's comma-separated CIDRs.
func parsePrefixes(flag, s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a CIDR", flag, part)
		}
		out = append(out, p)
	}
	return out, nil
}

func openStore(ctx context.Context, dsn string, logger *slog.Logger) (*sqlstore.Store, error) {
	var key []byte
	if k := os.Getenv("GATEHOUSE_ENCRYPTION_KEY"); k != "" {
		key = []byte(k)
		if len(key) != 32 {
			return nil, errors.New("GATEHOUSE_ENCRYPTION_KEY must be 32 bytes")
		}
	}
	s, err := sqlstore.Open(ctx, dsn, sqlstore.Config{EncryptionKey: key, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := s.Migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
