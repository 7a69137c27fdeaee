package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"

	"github.com/gatehouse-go/gatehouse"
	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/paginate"
	"github.com/gatehouse-go/gatehouse/storage"
)

// Resource kinds stored in app_records.
const (
	kindCustomer = "customer"
	kindBooking  = "booking"
	kindPayment  = "payment"
	kindStaff    = "staff"
)

// Timestamps are ISO 8601 UTC to the second, as TidyHQ's API returns them.
type ts time.Time

func (t ts) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05Z"))
}

func (t *ts) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339, s)
	*t = ts(v)
	return err
}

// ---- resources: blank fields are present as null.

type customer struct {
	ID        string  `json:"id"`
	FirstName string  `json:"first_name"`
	LastName  string  `json:"last_name"`
	Email     string  `json:"email"`
	Phone     *string `json:"phone"`
	Notes     *string `json:"notes"`
	CreatedAt ts      `json:"created_at"`
	UpdatedAt ts      `json:"updated_at"`
}

type customerInput struct {
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
	Email     *string `json:"email"`
	Phone     *string `json:"phone"`
	Notes     *string `json:"notes"`
}

type booking struct {
	ID         string  `json:"id"`
	CustomerID string  `json:"customer_id"`
	StaffID    *string `json:"staff_id"`
	Service    string  `json:"service"`
	StartsAt   string  `json:"starts_at"`
	EndsAt     string  `json:"ends_at"`
	Status     string  `json:"status"`
	Notes      *string `json:"notes"`
	CreatedAt  ts      `json:"created_at"`
	UpdatedAt  ts      `json:"updated_at"`
}

type bookingInput struct {
	CustomerID *string `json:"customer_id"`
	StaffID    *string `json:"staff_id"`
	Service    *string `json:"service"`
	StartsAt   *string `json:"starts_at"`
	EndsAt     *string `json:"ends_at"`
	Notes      *string `json:"notes"`
}

type payment struct {
	ID         string  `json:"id"`
	CustomerID string  `json:"customer_id"`
	BookingID  *string `json:"booking_id"`
	Amount     int64   `json:"amount"`
	Currency   string  `json:"currency"`
	Status     string  `json:"status"`
	RefundedAt *string `json:"refunded_at"`
	CreatedAt  ts      `json:"created_at"`
	UpdatedAt  ts      `json:"updated_at"`
}

type paymentInput struct {
	CustomerID *string `json:"customer_id"`
	BookingID  *string `json:"booking_id"`
	Amount     *int64  `json:"amount"`
	Currency   *string `json:"currency"`
}

type shift struct {
	Day   string `json:"day"`
	Start string `json:"start"`
	End   string `json:"end"`
}

type staffMember struct {
	ID        string  `json:"id"`
	FirstName string  `json:"first_name"`
	LastName  string  `json:"last_name"`
	Role      *string `json:"role"`
	Schedule  []shift `json:"schedule"`
	CreatedAt ts      `json:"created_at"`
	UpdatedAt ts      `json:"updated_at"`
}

type scheduleInput struct {
	Schedule *[]shift `json:"schedule"`
}

var (
	days     = map[string]bool{"monday": true, "tuesday": true, "wednesday": true, "thursday": true, "friday": true, "saturday": true, "sunday": true}
	clockRE  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	currency = regexp.MustCompile(`^[A-Z]{3}$`)
)

// ---- helpers

func scopeOf(r *http.Request) tenancy {
	p := gatehouse.FromContext(r.Context())
	return tenancy{Org: p.Organisation, Env: string(p.Environment)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// pathID reads a UUID path parameter; a malformed one is the seed's 400.
func pathID(r *http.Request, param, field, noun string) (string, error) {
	id := r.PathValue(param)
	if !storage.ValidID(id) {
		return "", apierror.InvalidParam(field, noun+" ID must be a valid UUID")
	}
	return strings.ToLower(id), nil
}

func (a *app) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNotFound) {
		err = apierror.NotFound("")
	}
	apierror.Writer{Logger: a.log}.Write(w, r, err)
}

// listOf serves a paginated list of one kind, decoding each record with
// decode.
func listOf[T any](a *app, kind string, decode func(record) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := paginate.FromRequest(r, paginate.Options{})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		recs, total, err := a.records.list(r.Context(), scopeOf(r), kind, p.Limit, p.Offset)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out := make([]T, 0, len(recs))
		for _, rec := range recs {
			v, err := decode(rec)
			if err != nil {
				a.fail(w, r, err)
				return
			}
			out = append(out, v)
		}
		paginate.SetHeaders(w, r, p, len(out), total)
		writeJSON(w, http.StatusOK, out)
	}
}

func decodeAs[T any](stamp func(*T, record)) func(record) (T, error) {
	return func(rec record) (T, error) {
		var v T
		if err := json.Unmarshal(rec.Data, &v); err != nil {
			// Stored data that does not decode is our fault, never the client's.
			return v, apierror.Internal(err)
		}
		stamp(&v, rec)
		return v, nil
	}
}

var (
	decodeCustomer = decodeAs(func(c *customer, r record) { c.ID, c.CreatedAt, c.UpdatedAt = r.ID, ts(r.CreatedAt), ts(r.UpdatedAt) })
	decodeBooking  = decodeAs(func(b *booking, r record) { b.ID, b.CreatedAt, b.UpdatedAt = r.ID, ts(r.CreatedAt), ts(r.UpdatedAt) })
	decodePayment  = decodeAs(func(p *payment, r record) { p.ID, p.CreatedAt, p.UpdatedAt = r.ID, ts(r.CreatedAt), ts(r.UpdatedAt) })
	decodeStaff    = decodeAs(func(s *staffMember, r record) {
		s.ID, s.CreatedAt, s.UpdatedAt = r.ID, ts(r.CreatedAt), ts(r.UpdatedAt)
	})
)

func getOf[T any](a *app, kind, param, field, noun string, decode func(record) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, param, field, noun)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rec, err := a.records.get(r.Context(), scopeOf(r), kind, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		v, err := decode(rec)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// ---- contacts/me

// contact is GET /v1/contacts/me: the user behind the credential, or the
// application or key itself when no user is.
type contact struct {
	ID             string  `json:"id"`
	FirstName      *string `json:"first_name"`
	LastName       *string `json:"last_name"`
	Email          *string `json:"email"`
	OrganisationID string  `json:"organisation_id"`
	Kind           string  `json:"kind"`
	CreatedAt      *ts     `json:"created_at"`
}

func (a *app) me(w http.ResponseWriter, r *http.Request) {
	p := gatehouse.FromContext(r.Context())
	u, err := a.store.GetUser(r.Context(), p.Subject)
	if err == nil && u.OrganisationID == p.Organisation {
		c := ts(u.CreatedAt)
		writeJSON(w, http.StatusOK, contact{ID: u.ID, FirstName: &u.FirstName, LastName: &u.LastName, Email: &u.Email, OrganisationID: u.OrganisationID, Kind: "user", CreatedAt: &c})
		return
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.fail(w, r, err)
		return
	}
	kind := "client"
	if p.KeyID != "" {
		kind = "api_key"
	}
	writeJSON(w, http.StatusOK, contact{ID: p.Subject, OrganisationID: p.Organisation, Kind: kind})
}

// ---- customers

func (in *customerInput) validate(create bool) error {
	var v apierror.Validation
	if create {
		v.Check(in.FirstName != nil, "first_name", "is required")
		v.Check(in.LastName != nil, "last_name", "is required")
		v.Check(in.Email != nil, "email", "is required")
	}
	if in.FirstName != nil {
		v.Check(strings.TrimSpace(*in.FirstName) != "" && len(*in.FirstName) <= 100, "first_name", "must be 1 to 100 characters")
	}
	if in.LastName != nil {
		v.Check(strings.TrimSpace(*in.LastName) != "" && len(*in.LastName) <= 100, "last_name", "must be 1 to 100 characters")
	}
	if in.Email != nil {
		_, err := mail.ParseAddress(*in.Email)
		v.Check(err == nil && len(*in.Email) <= 254 && !strings.ContainsAny(*in.Email, "<> "), "email", "must be an email address")
	}
	if in.Phone != nil {
		v.Check(len(*in.Phone) <= 40, "phone", "must be at most 40 characters")
	}
	if in.Notes != nil {
		v.Check(len(*in.Notes) <= 2000, "notes", "must be at most 2000 characters")
	}
	return v.Err()
}

func (a *app) createCustomer(w http.ResponseWriter, r *http.Request) {
	var in customerInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := in.validate(true); err != nil {
		a.fail(w, r, err)
		return
	}
	c := customer{ID: newID(), FirstName: *in.FirstName, LastName: *in.LastName, Email: *in.Email, Phone: in.Phone, Notes: in.Notes}
	rec, err := a.records.write(r.Context(), scopeOf(r), kindCustomer, c.ID, c, true, "customer.created", &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c.CreatedAt, c.UpdatedAt = ts(rec.CreatedAt), ts(rec.UpdatedAt)
	writeJSON(w, http.StatusCreated, c)
}

func (a *app) updateCustomer(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "customer_id", "Customer")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in customerInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := in.validate(false); err != nil {
		a.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	rec, err := a.records.get(r.Context(), sc, kindCustomer, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c, _ := decodeCustomer(rec)
	set(&c.FirstName, in.FirstName)
	set(&c.LastName, in.LastName)
	set(&c.Email, in.Email)
	setPtr(&c.Phone, in.Phone)
	setPtr(&c.Notes, in.Notes)
	rec, err = a.records.write(r.Context(), sc, kindCustomer, id, c, false, "customer.updated", &c)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	c.UpdatedAt = ts(rec.UpdatedAt)
	writeJSON(w, http.StatusOK, c)
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

func setPtr[T any](dst **T, v *T) {
	if v != nil {
		*dst = v
	}
}

// ---- bookings

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func (a *app) validateBooking(r *http.Request, in *bookingInput, cur *booking) error {
	var v apierror.Validation
	sc := scopeOf(r)
	if cur == nil {
		v.Check(in.CustomerID != nil, "customer_id", "is required")
		v.Check(in.Service != nil, "service", "is required")
		v.Check(in.StartsAt != nil, "starts_at", "is required")
		v.Check(in.EndsAt != nil, "ends_at", "is required")
	}
	if in.CustomerID != nil {
		if !storage.ValidID(*in.CustomerID) {
			v.Add("customer_id", "Customer ID must be a valid UUID")
		} else if _, err := a.records.get(r.Context(), sc, kindCustomer, strings.ToLower(*in.CustomerID)); err != nil {
			v.Add("customer_id", "does not name a customer")
		}
	}
	if in.StaffID != nil {
		if !storage.ValidID(*in.StaffID) {
			v.Add("staff_id", "Staff ID must be a valid UUID")
		} else if _, err := a.records.get(r.Context(), sc, kindStaff, strings.ToLower(*in.StaffID)); err != nil {
			v.Add("staff_id", "does not name a staff member")
		}
	}
	if in.Service != nil {
		v.Check(strings.TrimSpace(*in.Service) != "" && len(*in.Service) <= 200, "service", "must be 1 to 200 characters")
	}
	start, end := "", ""
	if cur != nil {
		start, end = cur.StartsAt, cur.EndsAt
	}
	if in.StartsAt != nil {
		start = *in.StartsAt
		_, ok := parseTime(start)
		v.Check(ok, "starts_at", "must be an ISO 8601 time such as 2026-11-22T10:00:00Z")
	}
	if in.EndsAt != nil {
		end = *in.EndsAt
		_, ok := parseTime(end)
		v.Check(ok, "ends_at", "must be an ISO 8601 time such as 2026-11-22T11:00:00Z")
	}
	if s, ok1 := parseTime(start); ok1 {
		if e, ok2 := parseTime(end); ok2 {
			v.Check(e.After(s), "ends_at", "must be after starts_at")
		}
	}
	if in.Notes != nil {
		v.Check(len(*in.Notes) <= 2000, "notes", "must be at most 2000 characters")
	}
	return v.Err()
}

func utc(s string) string {
	t, _ := parseTime(s)
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

func (a *app) createBooking(w http.ResponseWriter, r *http.Request) {
	var in bookingInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.validateBooking(r, &in, nil); err != nil {
		a.fail(w, r, err)
		return
	}
	b := booking{ID: newID(), CustomerID: strings.ToLower(*in.CustomerID), StaffID: in.StaffID, Service: *in.Service,
		StartsAt: utc(*in.StartsAt), EndsAt: utc(*in.EndsAt), Status: "confirmed", Notes: in.Notes}
	rec, err := a.records.write(r.Context(), scopeOf(r), kindBooking, b.ID, b, true, "booking.created", &b)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	b.CreatedAt, b.UpdatedAt = ts(rec.CreatedAt), ts(rec.UpdatedAt)
	writeJSON(w, http.StatusCreated, b)
}

func (a *app) changeBooking(cancel bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "id", "booking_id", "Booking")
		if err != nil {
			a.fail(w, r, err)
			return
		}
		sc := scopeOf(r)
		rec, err := a.records.get(r.Context(), sc, kindBooking, id)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		b, _ := decodeBooking(rec)
		event := "booking.updated"
		if cancel {
			if b.Status == "cancelled" {
				a.fail(w, r, apierror.Conflict("The booking is already cancelled"))
				return
			}
			b.Status, event = "cancelled", "booking.cancelled"
		} else {
			var in bookingInput
			if err := a.decode(w, r, &in); err != nil {
				a.fail(w, r, err)
				return
			}
			if err := a.validateBooking(r, &in, &b); err != nil {
				a.fail(w, r, err)
				return
			}
			if in.CustomerID != nil {
				b.CustomerID = strings.ToLower(*in.CustomerID)
			}
			setPtr(&b.StaffID, in.StaffID)
			set(&b.Service, in.Service)
			if in.StartsAt != nil {
				b.StartsAt = utc(*in.StartsAt)
			}
			if in.EndsAt != nil {
				b.EndsAt = utc(*in.EndsAt)
			}
			setPtr(&b.Notes, in.Notes)
		}
		rec, err = a.records.write(r.Context(), sc, kindBooking, id, b, false, event, &b)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		b.UpdatedAt = ts(rec.UpdatedAt)
		writeJSON(w, http.StatusOK, b)
	}
}

// ---- payments

func (a *app) createPayment(w http.ResponseWriter, r *http.Request) {
	var in paymentInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	var v apierror.Validation
	sc := scopeOf(r)
	if v.Check(in.CustomerID != nil, "customer_id", "is required") {
		if !storage.ValidID(*in.CustomerID) {
			v.Add("customer_id", "Customer ID must be a valid UUID")
		} else if _, err := a.records.get(r.Context(), sc, kindCustomer, strings.ToLower(*in.CustomerID)); err != nil {
			v.Add("customer_id", "does not name a customer")
		}
	}
	if in.BookingID != nil {
		if !storage.ValidID(*in.BookingID) {
			v.Add("booking_id", "Booking ID must be a valid UUID")
		} else if _, err := a.records.get(r.Context(), sc, kindBooking, strings.ToLower(*in.BookingID)); err != nil {
			v.Add("booking_id", "does not name a booking")
		}
	}
	if v.Check(in.Amount != nil, "amount", "is required") {
		v.Check(*in.Amount > 0 && *in.Amount <= 100_000_000, "amount", "must be a positive amount in minor units (cents), at most 100000000")
	}
	if v.Check(in.Currency != nil, "currency", "is required") {
		v.Check(currency.MatchString(*in.Currency), "currency", "must be an ISO 4217 code such as AUD")
	}
	if err := v.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	p := payment{ID: newID(), CustomerID: strings.ToLower(*in.CustomerID), BookingID: in.BookingID, Amount: *in.Amount, Currency: *in.Currency, Status: "completed"}
	rec, err := a.records.write(r.Context(), sc, kindPayment, p.ID, p, true, "payment.completed", &p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.CreatedAt, p.UpdatedAt = ts(rec.CreatedAt), ts(rec.UpdatedAt)
	writeJSON(w, http.StatusCreated, p)
}

func (a *app) refundPayment(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "payment_id", "Payment")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	rec, err := a.records.get(r.Context(), sc, kindPayment, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p, _ := decodePayment(rec)
	if p.Status == "refunded" {
		a.fail(w, r, apierror.Conflict("The payment is already refunded"))
		return
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05Z")
	p.Status, p.RefundedAt = "refunded", &now
	rec, err = a.records.write(r.Context(), sc, kindPayment, id, p, false, "payment.refunded", &p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p.UpdatedAt = ts(rec.UpdatedAt)
	writeJSON(w, http.StatusOK, p)
}

// ---- staff

func (a *app) updateSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id", "staff_id", "Staff")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var in scheduleInput
	if err := a.decode(w, r, &in); err != nil {
		a.fail(w, r, err)
		return
	}
	var v apierror.Validation
	if v.Check(in.Schedule != nil, "schedule", "is required") {
		v.Check(len(*in.Schedule) <= 50, "schedule", "must have at most 50 shifts")
		for _, s := range *in.Schedule {
			v.Check(days[s.Day], "schedule.day", "must be a weekday name such as monday")
			v.Check(clockRE.MatchString(s.Start) && clockRE.MatchString(s.End) && s.Start < s.End, "schedule.start", "start and end must be HH:MM with start before end")
		}
	}
	if err := v.Err(); err != nil {
		a.fail(w, r, err)
		return
	}
	sc := scopeOf(r)
	rec, err := a.records.get(r.Context(), sc, kindStaff, id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s, _ := decodeStaff(rec)
	s.Schedule = *in.Schedule
	rec, err = a.records.write(r.Context(), sc, kindStaff, id, s, false, "staff.schedule_changed", &s)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	s.UpdatedAt = ts(rec.UpdatedAt)
	writeJSON(w, http.StatusOK, s)
}

// ---- analytics

// summary is GET /v1/analytics/summary. Amounts are in minor units per
// currency.
type summary struct {
	Customers         int              `json:"customers"`
	Bookings          int              `json:"bookings"`
	BookingsCancelled int              `json:"bookings_cancelled"`
	Payments          int              `json:"payments"`
	Revenue           map[string]int64 `json:"revenue"`
	Refunded          map[string]int64 `json:"refunded"`
	Staff             int              `json:"staff"`
}

func (a *app) analytics(w http.ResponseWriter, r *http.Request) {
	sc := scopeOf(r)
	all := map[string][]record{}
	for _, kind := range []string{kindCustomer, kindBooking, kindPayment, kindStaff} {
		recs, err := a.records.all(r.Context(), sc, kind)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		all[kind] = recs
	}
	out := summary{Customers: len(all[kindCustomer]), Bookings: len(all[kindBooking]), Payments: len(all[kindPayment]), Staff: len(all[kindStaff]),
		Revenue: map[string]int64{}, Refunded: map[string]int64{}}
	for _, rec := range all[kindBooking] {
		if b, _ := decodeBooking(rec); b.Status == "cancelled" {
			out.BookingsCancelled++
		}
	}
	for _, rec := range all[kindPayment] {
		p, _ := decodePayment(rec)
		if p.Status == "refunded" {
			out.Refunded[p.Currency] += p.Amount
		} else {
			out.Revenue[p.Currency] += p.Amount
		}
	}
	writeJSON(w, http.StatusOK, out)
}
