// Package headerval builds response header values with as few allocations
// as the request path allows: the middleware that sets several headers
// formats their values into one buffer of its own and hands out strings
// that share it, instead of allocating a string and a slice per header.
package headerval

import "unsafe"

// Freeze returns the bytes of b as a string without copying them. The
// caller must never write to those bytes again, through b or through any
// slice sharing its array; appending past len(b) is fine, since it writes
// only bytes the string does not cover.
func Freeze(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
