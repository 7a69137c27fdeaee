package main

import (
	"net/http"
	"time"

	"github.com/gatehouse-go/gatehouse/ratelimit"
)

// authFailPolicy bounds the failed authentications (a credential sent and
// refused) from one client address, on each instance. An API key with a
// valid checksum, which is not secret, costs a storage lookup when it is
// unknown: without a bound, a client sending fresh ones would turn each
// request into a query. Requests without a credential do not count.
var authFailPolicy = ratelimit.MustPolicy("auth-failures", "100/m")

// authBudget answers 429 before authenticating a request from an address
// that has spent its budget of failed authentications; authError spends
// it. The budget is kept in memory, per instance: it bounds the lookups
// each instance can be made to run, which is what it is for.
func (a *app) authBudget(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		res := a.authFails.AllowAt(a.authFailKey(r), authFailPolicy, 0, now)
		if spent, ok := res.Exhausted(); ok {
			a.limitError(w, r, ratelimit.Refusal(spent, spent.Reset.Sub(now)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// spendAuthFailure counts one refused credential against its address.
func (a *app) spendAuthFailure(r *http.Request) {
	a.authFails.AllowAt(a.authFailKey(r), authFailPolicy, 1, time.Now())
}

func (a *app) authFailKey(r *http.Request) string {
	return "authfail:" + ratelimit.AddressKey(a.clientIP(r))
}
