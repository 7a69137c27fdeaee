package paginate_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gatehouse-go/gatehouse/apierror"
	"github.com/gatehouse-go/gatehouse/paginate"
)

func Example() {
	customers := make([]string, 47)
	for i := range customers {
		customers[i] = fmt.Sprintf("customer-%d", i+1)
	}
	list := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := paginate.FromRequest(r, paginate.Options{})
		if err != nil {
			apierror.Write(w, r, err) // 400 INVALID_REQUEST naming the parameter
			return
		}
		page := paginate.Slice(customers, p)
		paginate.SetHeaders(w, r, p, len(page), len(customers))
		_ = json.NewEncoder(w).Encode(page)
	})

	rec := httptest.NewRecorder()
	list.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/customers?per_page=20&page=3", nil))
	h := rec.Header()
	fmt.Println(h.Get("X-Pagination-Per-Page"), h.Get("X-Pagination-Current-Page"), h.Get("X-Pagination-Total-Pages"), h.Get("X-Pagination-Total-Entries"))
	fmt.Println(h.Get("Link"))
	fmt.Print(rec.Body.String())
	// Output:
	// 20 3 3 47
	// </v1/customers?page=1&per_page=20>; rel="first", </v1/customers?page=2&per_page=20>; rel="prev", </v1/customers?page=3&per_page=20>; rel="last"
	// ["customer-41","customer-42","customer-43","customer-44","customer-45","customer-46","customer-47"]
}
