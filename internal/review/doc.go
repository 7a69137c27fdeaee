// Package review holds tests that read Gatehouse's own source: checks a
// reviewer would otherwise make by eye, such as that secrets are compared
// only in constant time. It has no code of its own.
package review
