package bench

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// BenchmarkServedPath serves GET /v1/bookings through net/http's own
// server loop — request parsing, the response's header map, its copy at
// WriteHeader, the sorted header lines, the buffered write — over an
// in-memory connection that has the next request ready until b.N were
// read, and counts the 200s written back (it fails unless there are b.N).
// It is what wrk measures of the server, without the
// kernel, the scheduler and the load generator: the same per-request
// work, in numbers that hold still on a noisy machine.
func BenchmarkServedPath(b *testing.B) {
	b.Run("bare-net-http", func(b *testing.B) {
		runServed(b, http.HandlerFunc(list), "")
	})
	b.Run("bare-same-headers", func(b *testing.B) {
		runServed(b, withHeaders(sameHeaders), "")
	})
	// The seven headers the seeds name, and Content-Type: eight keys, the
	// most a Go map holds before it grows out of its single group.
	b.Run("bare-seed-headers", func(b *testing.B) {
		runServed(b, withHeaders(sameHeaders[1:len(sameHeaders)-1]), "")
	})
	b.Run("gatehouse", func(b *testing.B) {
		secret, chain := apiKeyChain(b)
		runServed(b, stack(chain), secret)
	})
}

// withHeaders is the bare handler setting headers, values constant.
func withHeaders(headers [][2]string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for _, kv := range headers {
			hd[kv[0]] = []string{kv[1]}
		}
		list(w, r)
	}
}

// runServed serves b.N requests with credential (none when empty) on one
// connection of a real http.Server, and fails unless b.N responses with
// status 200 were written.
func runServed(b *testing.B, h http.Handler, credential string) {
	req := "GET /v1/bookings?per_page=25&page=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n"
	if credential != "" {
		req += "Authorization: Bearer " + credential + "\r\n"
	}
	req += "\r\n"
	c := newRequestStream(req, b.N)
	l := &oneConnListener{c: make(chan net.Conn, 1)}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
	b.ReportAllocs()
	b.ResetTimer()
	l.c <- c
	<-c.closed // the server read the end of the stream, answered, and closed
	b.StopTimer()
	if c.ok != b.N {
		b.Fatalf("%d requests sent, %d answered 200", b.N, c.ok)
	}
}

// requestStream is a connection that reads as n copies of the same
// request, then as its end, and counts the 200 responses written to it.
type requestStream struct {
	req    []byte
	left   int // bytes still to read
	closed chan struct{}
	once   sync.Once
	ok     int    // status lines "HTTP/1.1 200 OK" written
	tail   []byte // the end of the writes so far, for a line split across two
}

func newRequestStream(req string, n int) *requestStream {
	return &requestStream{req: []byte(req), left: n * len(req), closed: make(chan struct{})}
}

func (c *requestStream) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && c.left > 0 {
		at := len(c.req) - c.left%len(c.req) // where in the request the stream is
		if at == len(c.req) {
			at = 0
		}
		m := copy(p[n:min(len(p), n+c.left)], c.req[at:])
		n += m
		c.left -= m
	}
	return n, nil
}

var statusOK = []byte("HTTP/1.1 200 OK\r\n")

func (c *requestStream) Write(p []byte) (int, error) {
	// tail holds fewer bytes than a status line, and so does p's start:
	// a line found in the two joined is one split across writes.
	k := len(statusOK) - 1
	c.tail = append(c.tail, p[:min(len(p), k)]...)
	c.ok += bytes.Count(c.tail, statusOK) + bytes.Count(p, statusOK)
	if len(p) >= k {
		c.tail = append(c.tail[:0], p[len(p)-k:]...)
	} else if len(c.tail) > k {
		c.tail = append(c.tail[:0], c.tail[len(c.tail)-k:]...)
	}
	return len(p), nil
}
func (c *requestStream) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}
func (c *requestStream) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
}
func (c *requestStream) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *requestStream) SetDeadline(time.Time) error      { return nil }
func (c *requestStream) SetReadDeadline(time.Time) error  { return nil }
func (c *requestStream) SetWriteDeadline(time.Time) error { return nil }

// oneConnListener accepts the connections sent on c until it is closed.
type oneConnListener struct {
	c    chan net.Conn
	once sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if c, ok := <-l.c; ok {
		return c, nil
	}
	return nil, net.ErrClosed
}
func (l *oneConnListener) Close() error {
	l.once.Do(func() { close(l.c) })
	return nil
}
func (l *oneConnListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
}
