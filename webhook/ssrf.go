package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a webhook URL resolves to an address
// the guard refuses (loopback, private, link-local, CGNAT, unspecified,
// multicast, and their IPv4-mapped forms).
var ErrForbiddenAddress = errors.New("webhook: the URL points to an address webhooks may not reach")

// blocked are the ranges a delivery never connects to unless allowed.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", unspecified
	netip.MustParsePrefix("10.0.0.0/8"),      // private
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata
	netip.MustParsePrefix("172.16.0.0/12"),   // private
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"),  // private
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::1/128"),         // loopback
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("ff00::/8"),        // multicast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (embeds IPv4)
	netip.MustParsePrefix("2002::/16"),       // 6to4 (embeds IPv4)
	netip.MustParsePrefix("100::/64"),        // discard
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
	netip.MustParsePrefix("2001::/32"),       // Teredo (embeds IPv4)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// Guard decides which addresses deliveries may reach. The zero value
// refuses every range above; Allow opens CIDRs back up (for tests and
// on-premise receivers).
type Guard struct {
	Allow []netip.Prefix
}

// Permitted reports whether a delivery may connect to addr.
func (g Guard) Permitted(addr netip.Addr) bool {
	addr = addr.WithZone("")
	for _, p := range g.Allow {
		if p.Contains(addr) || p.Contains(addr.Unmap()) {
			return true
		}
	}
	for _, a := range []netip.Addr{addr, addr.Unmap()} {
		for _, p := range blocked {
			if p.Contains(a) {
				return false
			}
		}
	}
	return addr.IsValid()
}

// control runs on the address actually dialed, after DNS resolution, so a
// name that resolves (or re-resolves: DNS rebinding) to a forbidden address
// is refused at connect time.
func (g Guard) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !g.Permitted(a) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, host)
	}
	return nil
}

// Client returns the HTTP client deliveries use: its dialer checks every
// connection with the guard, it ignores proxy environment variables, never
// follows redirects, and times out after timeout.
func (g Guard) Client(timeout time.Duration) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, ControlContext: g.control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckURL validates a webhook URL at registration: absolute http(s), no
// userinfo, and every address its host resolves to permitted. It is the
// friendly early check; the dial-time check is the one that holds.
func (g Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	if len(raw) > 2048 {
		return errors.New("must be at most 2048 characters")
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if !g.Permitted(a) {
			return ErrForbiddenAddress
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("the host %q does not resolve", host)
	}
	for _, a := range addrs {
		if !g.Permitted(a) {
			return ErrForbiddenAddress
		}
	}
	return nil
}
