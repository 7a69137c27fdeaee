// Package bench measures Gatehouse beside the libraries a user would
// otherwise pick, on the same inputs in the same run. It is its own
// module so that the peers never become dependencies of the library.
//
//	cd bench && go test -run '^$' -bench . -benchmem
package bench
