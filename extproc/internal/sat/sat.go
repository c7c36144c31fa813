// Package sat is saturating int64 arithmetic for estimates and costs:
// a result that would overflow clamps at math.MaxInt64 (or MinInt64)
// instead of wrapping, so a huge request can only look expensive, never
// free.
package sat

import (
	"math"
	"math/bits"
)

// Add is a+b, clamped to the int64 range.
func Add(a, b int64) int64 {
	s := a + b
	// Overflow iff a and b share a sign that s does not have.
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		if a >= 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}

// Mul is a*b, clamped to the int64 range.
func Mul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	neg := (a < 0) != (b < 0)
	hi, lo := bits.Mul64(abs(a), abs(b))
	if neg {
		if hi != 0 || lo > 1<<63 {
			return math.MinInt64
		}
		return -int64(lo)
	}
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// abs is |a| as a uint64 (exact for MinInt64 too).
func abs(a int64) uint64 {
	if a < 0 {
		return uint64(-(a + 1)) + 1
	}
	return uint64(a)
}
