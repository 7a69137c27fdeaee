// Package reqctx lets the request-id context of apierror.RequestID carry
// the request's principal too, so that authenticating a request costs no
// second context node and no second copy of the *http.Request.
//
// apierror.RequestID makes one context per request with an empty [Slot],
// owned by the request it passes on; gatehouse.Chain, serving that request,
// fills it with the principal it authenticated, once; and
// gatehouse.FromContext reads it back through the context's Value under
// [PrincipalKey]. The slot is write-once: a second authentication in the
// same request (a nested chain) finds it full and falls back to a context
// of its own, which, being nearer, is the one FromContext finds. This is the
// same pattern as chi's per-request RouteContext: a mutable value that
// belongs to exactly one request.
//
// apierror cannot import the root package (the root imports apierror), so
// the slot holds the principal as an interface value that only the root
// package fills and asserts.
package reqctx

import (
	"context"
	"net/http"
	"sync/atomic"
)

// SlotKey is the context key under which a request's [Slot] is found. Only
// a context made for one request (by apierror.RequestID) answers it.
type SlotKey struct{}

// PrincipalKey is the context key of the request's principal, whether it
// is held by a [Slot] or by a context node of its own (gatehouse.NewContext,
// which also hides any slot above it from [Of]).
type PrincipalKey struct{}

// Slot holds one request's principal: empty until filled, then never
// changed. Load and Fill are safe for concurrent use: a goroutine that
// holds the request's context may read it while the request is
// authenticated.
//
// A slot belongs to the one *http.Request that apierror.RequestID passed
// on, and only a chain serving that very request fills it. Other requests
// that share its context (sub-requests a handler serves in process with
// r.Clone(r.Context()), say, each with a credential of its own) get
// contexts of their own, so that no principal of one reaches another
// through the context they share.
type Slot struct {
	owner *http.Request
	v     atomic.Value
}

// Own makes r the request whose chain may fill the slot. RequestID calls it
// once, before r is served.
func (s *Slot) Own(r *http.Request) { s.owner = r }

// Owned reports whether a request owns the slot.
func (s *Slot) Owned() bool { return s.owner != nil }

// Fill stores p when r owns the slot and the slot is empty, and reports
// whether it did. p is always a non-nil pointer of the root package's
// principal type (one concrete type, as atomic.Value requires).
func (s *Slot) Fill(r *http.Request, p any) bool {
	return r == s.owner && s.v.CompareAndSwap(nil, p)
}

// Load returns the value stored by Fill, or nil while the slot is empty.
func (s *Slot) Load() any { return s.v.Load() }

// Of returns the request's slot carried by ctx, or nil when ctx carries
// none.
func Of(ctx context.Context) *Slot {
	s, _ := ctx.Value(SlotKey{}).(*Slot)
	return s
}
