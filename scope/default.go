package scope

// The nine scopes of the seed's API (Tiquo's "Permission Scopes").
const (
	BookingsRead   = "bookings:read"
	BookingsWrite  = "bookings:write"
	CustomersRead  = "customers:read"
	CustomersWrite = "customers:write"
	PaymentsRead   = "payments:read"
	PaymentsWrite  = "payments:write"
	AnalyticsRead  = "analytics:read"
	StaffRead      = "staff:read"
	StaffWrite     = "staff:write"
)

// DefaultScopes returns the seed's nine scopes with their descriptions;
// each :write scope implies its :read scope.
func DefaultScopes() []Scope {
	return []Scope{
		{Name: BookingsRead, Description: "Read booking and appointment data"},
		{Name: BookingsWrite, Description: "Create and modify bookings", Implies: []string{BookingsRead}},
		{Name: CustomersRead, Description: "Access customer information"},
		{Name: CustomersWrite, Description: "Modify customer profiles", Implies: []string{CustomersRead}},
		{Name: PaymentsRead, Description: "View payment and transaction data"},
		{Name: PaymentsWrite, Description: "Process payments and refunds", Implies: []string{PaymentsRead}},
		{Name: AnalyticsRead, Description: "Access business analytics and reports"},
		{Name: StaffRead, Description: "View staff information and schedules"},
		{Name: StaffWrite, Description: "Modify staff data and assignments", Implies: []string{StaffRead}},
	}
}

// DefaultCatalog returns a new catalog of [DefaultScopes]. Extend it with
// [Catalog.With].
func DefaultCatalog() *Catalog { return MustCatalog(DefaultScopes()...) }
