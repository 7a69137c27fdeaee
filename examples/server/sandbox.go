package main

import (
	"context"
	"time"
)

// sandboxData counts what seedSandbox gives an organisation's test
// environment.
type sandboxData struct {
	Customers int `json:"customers"`
	Bookings  int `json:"bookings"`
	Payments  int `json:"payments"`
	Staff     int `json:"staff"`
}

// seedSandbox gives a new organisation the seed's "sandbox environment
// with test customers and bookings": in its test environment three
// customers, three bookings (one cancelled) with its staff, and two
// payments (one refunded), so that a test key has data to read, change,
// cancel and refund from its first request; in both environments the
// same two staff members, whom the API reads but does not create. The
// live environment gets no customers, bookings or payments. Everything is
// written in one transaction (with the organisation's own row when ctx
// carries that transaction), and no webhook event is sent for it: no
// subscription can exist yet.
func (r *records) seedSandbox(ctx context.Context, org string) (sandboxData, error) {
	var n sandboxData
	err := r.store.InTx(ctx, func(ctx context.Context) error {
		test := tenancy{Org: org, Env: "test"}
		add := func(sc tenancy, kind, id string, v any) error {
			_, err := r.write(ctx, sc, kind, id, v, true, "", nil)
			return err
		}
		role := "Stylist"
		var staff []string
		for _, env := range []string{"test", "live"} {
			for _, name := range [][2]string{{"Grace", "Hopper"}, {"Alan", "Turing"}} {
				s := staffMember{ID: newID(), FirstName: name[0], LastName: name[1], Role: &role, Schedule: []shift{{"monday", "09:00", "17:00"}, {"wednesday", "09:00", "17:00"}}}
				if err := add(tenancy{Org: org, Env: env}, kindStaff, s.ID, s); err != nil {
					return err
				}
				if env == "test" {
					staff = append(staff, s.ID)
					n.Staff++
				}
			}
		}
		phone, notes := "+61 400 000 001", "Prefers morning appointments"
		customers := []customer{
			{ID: newID(), FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Phone: &phone},
			{ID: newID(), FirstName: "Katherine", LastName: "Johnson", Email: "katherine@example.com"},
			{ID: newID(), FirstName: "Edsger", LastName: "Dijkstra", Email: "edsger@example.com", Notes: &notes},
		}
		for _, c := range customers {
			if err := add(test, kindCustomer, c.ID, c); err != nil {
				return err
			}
			n.Customers++
		}
		// Bookings around the day the organisation is created: two to
		// come, one in the past that was cancelled.
		day := time.Now().UTC().Truncate(24 * time.Hour)
		at := func(days, hour, minute int) string {
			return day.AddDate(0, 0, days).Add(time.Duration(hour)*time.Hour + time.Duration(minute)*time.Minute).Format("2006-01-02T15:04:05Z")
		}
		bookings := []booking{
			{ID: newID(), CustomerID: customers[0].ID, StaffID: &staff[0], Service: "Haircut", StartsAt: at(1, 10, 0), EndsAt: at(1, 11, 0), Status: "confirmed"},
			{ID: newID(), CustomerID: customers[1].ID, StaffID: &staff[1], Service: "Colour", StartsAt: at(2, 14, 0), EndsAt: at(2, 15, 30), Status: "confirmed"},
			{ID: newID(), CustomerID: customers[2].ID, StaffID: &staff[0], Service: "Beard trim", StartsAt: at(-1, 9, 0), EndsAt: at(-1, 9, 30), Status: "cancelled"},
		}
		for _, b := range bookings {
			if err := add(test, kindBooking, b.ID, b); err != nil {
				return err
			}
			n.Bookings++
		}
		refunded := time.Now().UTC().Format("2006-01-02T15:04:05Z")
		payments := []payment{
			{ID: newID(), CustomerID: customers[0].ID, BookingID: &bookings[0].ID, Amount: 4500, Currency: "AUD", Status: "completed"},
			{ID: newID(), CustomerID: customers[1].ID, BookingID: &bookings[1].ID, Amount: 12000, Currency: "AUD", Status: "refunded", RefundedAt: &refunded},
		}
		for _, p := range payments {
			if err := add(test, kindPayment, p.ID, p); err != nil {
				return err
			}
			n.Payments++
		}
		return nil
	})
	if err != nil {
		return sandboxData{}, err
	}
	return n, nil
}
