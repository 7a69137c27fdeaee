package headerval_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/gatehouse-go/gatehouse/internal/headerval"
)

func TestFreezeKeepsEarlierValuesWhenTheBufferGrows(t *testing.T) {
	// Not parallel: testing.AllocsPerRun refuses to run in a parallel test.
	var buf [4]byte
	b := strconv.AppendInt(buf[:0], 123, 10)
	first := headerval.Freeze(b)
	// Appending past the end, even past the capacity (a new array), must
	// leave the frozen value as it was.
	b = strconv.AppendInt(b, 456789, 10)
	second := headerval.Freeze(b[3:])
	assert.Equal(t, "123", first)
	assert.Equal(t, "456789", second)
	assert.Equal(t, "", headerval.Freeze(nil))
	assert.Zero(t, testing.AllocsPerRun(100, func() { _ = headerval.Freeze(buf[:2]) }))
}
