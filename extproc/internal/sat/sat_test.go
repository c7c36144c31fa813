package sat

import (
	"math"
	"math/big"
	"testing"
)

func clamp(z *big.Int) int64 {
	if z.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	if z.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return math.MinInt64
	}
	return z.Int64()
}

func TestAddMul(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	tests := []struct {
		a, b     int64
		add, mul int64
	}{
		{0, 0, 0, 0},
		{2, 3, 5, 6},
		{-2, 3, 1, -6},
		{max, 1, max, max},
		{max, max, max, max},
		{min, -1, min, max},
		{min, 1, min + 1, min},
		{min, min, min, max},
		{1 << 56, 600_000, 1<<56 + 600_000, max},
		{1 << 32, 1 << 31, 1<<32 + 1<<31, max}, // 2^63 overflows by one
		{-(1 << 32), 1 << 31, -(1 << 32) + 1<<31, min},
		{3037000499, 3037000499, 6074000998, 9223372030926249001},
		{max, -1, max - 1, -max},
	}
	for _, tt := range tests {
		if got := Add(tt.a, tt.b); got != tt.add {
			t.Errorf("Add(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.add)
		}
		if got := Mul(tt.a, tt.b); got != tt.mul {
			t.Errorf("Mul(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.mul)
		}
	}
}

func FuzzAddMul(f *testing.F) {
	f.Add(int64(1<<56), int64(600_000))
	f.Add(int64(math.MinInt64), int64(-1))
	f.Fuzz(func(t *testing.T, a, b int64) {
		A, B := big.NewInt(a), big.NewInt(b)
		if got, want := Add(a, b), clamp(new(big.Int).Add(A, B)); got != want {
			t.Fatalf("Add(%d, %d) = %d, want %d", a, b, got, want)
		}
		if got, want := Mul(a, b), clamp(new(big.Int).Mul(A, B)); got != want {
			t.Fatalf("Mul(%d, %d) = %d, want %d", a, b, got, want)
		}
	})
}
