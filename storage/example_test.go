package storage_test

import (
	"fmt"

	"github.com/gatehouse-go/gatehouse/storage"
)

// Identifiers are UUID version 7: unique without coordination and ordered
// by creation time.
func ExampleNewID() {
	a, b := storage.NewID(), storage.NewID()
	fmt.Println(storage.ValidID(a), a[14] == '7', a < b || a[:13] == b[:13])
	// Output: true true true
}
