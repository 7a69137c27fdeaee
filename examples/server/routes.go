package main

import (
	"net/http"
	"strings"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/ratelimit"
	"github.com/gatehouse-go/gatehouse/scope"
)

// operation is one operation of the /v1 API: how it is served and how it
// is documented. The mux, GET /openapi.json, GET /postman.json and the
// explorer at GET /docs are all built from the same table, so the
// documentation cannot drift from what is served.
type operation struct {
	Method, Path string
	ID, Tag      string
	Summary      string
	// Scope is the scope the operation needs; "" means any valid
	// credential.
	Scope string
	// In is a zero value of the request body's type, or nil for none;
	// Example is a request body shown in the docs and the collection.
	In      any
	Example any
	// Out is a zero value of the response body's type, or nil for an
	// empty response; List says the body is a paginated array of Out.
	Out    any
	List   bool
	Status int
	// Errors lists the statuses beyond those every operation can answer
	// (400, 401, 403, 404, 406, 429, 500, 503).
	Errors  []int
	Handler http.HandlerFunc
}

// pathRateLimit is where a caller reads its rate-limit budget without
// spending it.
const pathRateLimit = "/v1/rate-limit"

// bodyErrors are the statuses an operation with a request body adds.
var bodyErrors = []int{http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity}

// operations is the API of the two seed documents.
func (a *app) operations() []operation {
	sample := map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "+61 400 000 000"}
	bookingSample := map[string]any{"customer_id": "01890a5d-ac96-774b-bcce-b302099a8057", "service": "Haircut",
		"starts_at": "2026-12-01T10:00:00Z", "ends_at": "2026-12-01T11:00:00Z"}
	return []operation{
		{Method: "GET", Path: pathRateLimit, ID: "getRateLimit", Tag: "Rate limits", Summary: "Your rate-limit windows as they stand; this request counts against none of them", Out: ratelimit.Status{}, Status: 200,
			Handler: func(w http.ResponseWriter, r *http.Request) { a.rateStatus.ServeHTTP(w, r) }},
		{Method: "GET", Path: "/v1/contacts/me", ID: "getMe", Tag: "Contacts", Summary: "The user (or application, or key) behind the credential", Out: contact{}, Status: 200, Handler: a.me},

		{Method: "GET", Path: "/v1/customers", ID: "listCustomers", Tag: "Customers", Summary: "List customers", Scope: "customers:read", Out: customer{}, List: true, Status: 200, Handler: listOf(a, kindCustomer, decodeCustomer)},
		{Method: "POST", Path: "/v1/customers", ID: "createCustomer", Tag: "Customers", Summary: "Create a customer (customer.created)", Scope: "customers:write", In: customerInput{}, Example: sample, Out: customer{}, Status: 201, Errors: bodyErrors, Handler: a.createCustomer},
		{Method: "GET", Path: "/v1/customers/{id}", ID: "getCustomer", Tag: "Customers", Summary: "Get a customer", Scope: "customers:read", Out: customer{}, Status: 200, Handler: getOf(a, kindCustomer, "id", "customer_id", "Customer", decodeCustomer)},
		{Method: "PATCH", Path: "/v1/customers/{id}", ID: "updateCustomer", Tag: "Customers", Summary: "Change some fields of a customer (customer.updated)", Scope: "customers:write", In: customerInput{}, Example: map[string]any{"phone": "+61 400 000 001"}, Out: customer{}, Status: 200, Errors: bodyErrors, Handler: a.updateCustomer},
		{Method: "PUT", Path: "/v1/customers/{id}", ID: "replaceCustomer", Tag: "Customers", Summary: "Update a customer (customer.updated)", Scope: "customers:write", In: customerInput{}, Example: sample, Out: customer{}, Status: 200, Errors: bodyErrors, Handler: a.updateCustomer},

		{Method: "GET", Path: "/v1/bookings", ID: "listBookings", Tag: "Bookings", Summary: "List bookings", Scope: "bookings:read", Out: booking{}, List: true, Status: 200, Handler: listOf(a, kindBooking, decodeBooking)},
		{Method: "POST", Path: "/v1/bookings", ID: "createBooking", Tag: "Bookings", Summary: "Create a booking (booking.created)", Scope: "bookings:write", In: bookingInput{}, Example: bookingSample, Out: booking{}, Status: 201, Errors: bodyErrors, Handler: a.createBooking},
		{Method: "GET", Path: "/v1/bookings/{id}", ID: "getBooking", Tag: "Bookings", Summary: "Get a booking", Scope: "bookings:read", Out: booking{}, Status: 200, Handler: getOf(a, kindBooking, "id", "booking_id", "Booking", decodeBooking)},
		{Method: "PATCH", Path: "/v1/bookings/{id}", ID: "updateBooking", Tag: "Bookings", Summary: "Change a booking (booking.updated)", Scope: "bookings:write", In: bookingInput{}, Example: map[string]any{"notes": "Window seat"}, Out: booking{}, Status: 200, Errors: append([]int{http.StatusConflict}, bodyErrors...), Handler: a.changeBooking(false)},
		{Method: "PUT", Path: "/v1/bookings/{id}", ID: "replaceBooking", Tag: "Bookings", Summary: "Update a booking (booking.updated)", Scope: "bookings:write", In: bookingInput{}, Example: bookingSample, Out: booking{}, Status: 200, Errors: append([]int{http.StatusConflict}, bodyErrors...), Handler: a.changeBooking(false)},
		{Method: "POST", Path: "/v1/bookings/{id}/cancel", ID: "cancelBooking", Tag: "Bookings", Summary: "Cancel a booking (booking.cancelled)", Scope: "bookings:write", Out: booking{}, Status: 200, Errors: []int{http.StatusConflict}, Handler: a.changeBooking(true)},

		{Method: "GET", Path: "/v1/payments", ID: "listPayments", Tag: "Payments", Summary: "List payments", Scope: "payments:read", Out: payment{}, List: true, Status: 200, Handler: listOf(a, kindPayment, decodePayment)},
		{Method: "POST", Path: "/v1/payments", ID: "createPayment", Tag: "Payments", Summary: "Take a payment (payment.completed)", Scope: "payments:write", In: paymentInput{}, Example: map[string]any{"customer_id": "01890a5d-ac96-774b-bcce-b302099a8057", "amount": 4500, "currency": "AUD"}, Out: payment{}, Status: 201, Errors: bodyErrors, Handler: a.createPayment},
		{Method: "GET", Path: "/v1/payments/{id}", ID: "getPayment", Tag: "Payments", Summary: "Get a payment", Scope: "payments:read", Out: payment{}, Status: 200, Handler: getOf(a, kindPayment, "id", "payment_id", "Payment", decodePayment)},
		{Method: "POST", Path: "/v1/payments/{id}/refund", ID: "refundPayment", Tag: "Payments", Summary: "Refund a payment (payment.refunded)", Scope: "payments:write", Out: payment{}, Status: 200, Errors: []int{http.StatusConflict}, Handler: a.refundPayment},

		{Method: "GET", Path: "/v1/staff", ID: "listStaff", Tag: "Staff", Summary: "List staff", Scope: "staff:read", Out: staffMember{}, List: true, Status: 200, Handler: listOf(a, kindStaff, decodeStaff)},
		{Method: "GET", Path: "/v1/staff/{id}", ID: "getStaff", Tag: "Staff", Summary: "Get a staff member", Scope: "staff:read", Out: staffMember{}, Status: 200, Handler: getOf(a, kindStaff, "id", "staff_id", "Staff", decodeStaff)},
		{Method: "PUT", Path: "/v1/staff/{id}/schedule", ID: "updateSchedule", Tag: "Staff", Summary: "Replace a staff member's schedule (staff.schedule_changed)", Scope: "staff:write", In: scheduleInput{}, Example: map[string]any{"schedule": []shift{{"monday", "09:00", "17:00"}}}, Out: staffMember{}, Status: 200, Errors: bodyErrors, Handler: a.updateSchedule},

		{Method: "GET", Path: "/v1/analytics/summary", ID: "getSummary", Tag: "Analytics", Summary: "Counts and totals", Scope: "analytics:read", Out: summary{}, Status: 200, Handler: a.analytics},

		{Method: "GET", Path: "/v1/webhooks", ID: "listWebhooks", Tag: "Webhooks", Summary: "List webhook subscriptions", Scope: "webhooks:read", Out: webhookView{}, List: true, Status: 200, Handler: a.listWebhooks},
		{Method: "POST", Path: "/v1/webhooks", ID: "createWebhook", Tag: "Webhooks", Summary: "Subscribe a URL to events; the signing secret is returned once", Scope: "webhooks:write", In: webhookInput{}, Example: map[string]any{"url": "https://example.com/hooks", "events": []string{"booking.*", "payment.completed"}}, Out: webhookView{}, Status: 201, Errors: bodyErrors, Handler: a.createWebhook},
		{Method: "GET", Path: "/v1/webhooks/event-types", ID: "listEventTypes", Tag: "Webhooks", Summary: "The event types a subscription may name, and what each means", Scope: "webhooks:read", Out: []eventType{}, Status: 200, Handler: a.listEventTypes},
		{Method: "GET", Path: "/v1/webhooks/{id}", ID: "getWebhook", Tag: "Webhooks", Summary: "Get a webhook subscription", Scope: "webhooks:read", Out: webhookView{}, Status: 200, Handler: a.getWebhook},
		{Method: "PATCH", Path: "/v1/webhooks/{id}", ID: "updateWebhook", Tag: "Webhooks", Summary: "Change a subscription's URL or events, or disable it or enable it again (after its endpoint was mended)", Scope: "webhooks:write", In: webhookPatch{}, Example: map[string]any{"events": []string{"booking.*", "payment.*"}, "enabled": true}, Out: webhookView{}, Status: 200, Errors: bodyErrors, Handler: a.updateWebhook},
		{Method: "POST", Path: "/v1/webhooks/{id}/rotate-secret", ID: "rotateWebhookSecret", Tag: "Webhooks", Summary: "Give a subscription a new signing secret (yours, or a generated one when none is given), returned once; the previous one signs beside it for a day", Scope: "webhooks:write", In: secretInput{}, Example: map[string]any{}, Out: secretRotation{}, Status: 200, Errors: bodyErrors, Handler: a.rotateWebhookSecret},
		{Method: "DELETE", Path: "/v1/webhooks/{id}", ID: "deleteWebhook", Tag: "Webhooks", Summary: "Delete a webhook subscription", Scope: "webhooks:write", Status: 204, Handler: a.deleteWebhook},
		{Method: "POST", Path: "/v1/webhooks/{id}/test", ID: "testWebhook", Tag: "Webhooks", Summary: "Send a test event (webhook.test) to this subscription alone, to check its endpoint", Scope: "webhooks:write", Out: testEvent{}, Status: 202, Errors: []int{http.StatusConflict}, Handler: a.testWebhook},
		{Method: "GET", Path: "/v1/webhooks/{id}/deliveries", ID: "listDeliveries", Tag: "Webhooks", Summary: "Recent deliveries of a subscription, newest first", Scope: "webhooks:read", Out: deliveryView{}, List: true, Status: 200, Handler: a.listDeliveries},
		{Method: "GET", Path: "/v1/webhooks/{id}/deliveries/{delivery}/attempts", ID: "listAttempts", Tag: "Webhooks", Summary: "Every attempt of a delivery, oldest first: when, how long, and what the endpoint answered", Scope: "webhooks:read", Out: []attemptView{}, Status: 200, Handler: a.listAttempts},
		{Method: "POST", Path: "/v1/webhooks/{id}/deliveries/{delivery}/redeliver", ID: "redeliver", Tag: "Webhooks", Summary: "Send a delivery again", Scope: "webhooks:write", Out: redelivery{}, Status: 202, Handler: a.redeliver},
	}
}

// apiMux serves the operations, each behind its scope guard. A request
// that matches none reaches the catch-all, which answers 405 naming the
// methods the path has (in Allow) or 404, both in the envelope. Requests
// that match are routed once; only the catch-all asks which methods exist.
func (a *app) apiMux(ops []operation) *http.ServeMux {
	mux := http.NewServeMux()
	paths := http.NewServeMux() // the same patterns, for asking only
	for _, op := range ops {
		var h http.Handler = op.Handler
		if op.Scope != "" {
			h = scope.MustRequire(a.catalog, strings.Fields(op.Scope)...).Handler(h)
		}
		mux.Handle(op.Method+" "+op.Path, h)
		paths.Handle(op.Method+" "+op.Path, http.NotFoundHandler())
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := paths.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			a.fail(w, r, apierror.MethodNotAllowed(allow...))
			return
		}
		a.fail(w, r, apierror.NotFound(""))
	})
	return mux
}
