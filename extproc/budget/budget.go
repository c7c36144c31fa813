// Package budget is the calendar of budget periods: which period an instant
// falls in, and when that period starts and ends, in a configured time zone.
//
// Periods are calendar-aligned, not rolling from a key's creation: a "1mo"
// budget resets at 00:00 on the first of each month in the zone, so every
// key, team and organization resets together and an operator can say when.
package budget

import (
	"fmt"
	"math"
	"time"
)

// Clock returns the current time. Tests inject one; nil means [time.Now].
type Clock func() time.Time

// Now calls c, or [time.Now] when c is nil.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now()
	}
	return c()
}

// Period is a budget duration. The zero value is "no period": the budget
// never resets.
type Period string

// The periods Weir knows, with LiteLLM's spelling.
const (
	None   Period = ""
	Hour   Period = "1h"
	Day    Period = "1d"
	Week   Period = "7d"  // Monday 00:00 to Monday 00:00
	Days30 Period = "30d" // 30 local days, counted from 1970-01-01
	Month  Period = "1mo" // the 1st 00:00 to the next 1st 00:00
)

// ParsePeriod reads a budget_duration.
func ParsePeriod(s string) (Period, error) {
	switch p := Period(s); p {
	case None, Hour, Day, Week, Days30, Month:
		return p, nil
	}
	return None, fmt.Errorf("budget: unknown budget_duration %q (want 1h, 1d, 7d, 30d or 1mo)", s)
}

// UnmarshalText implements [encoding.TextUnmarshaler].
func (p *Period) UnmarshalText(b []byte) error {
	v, err := ParsePeriod(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Bounds returns the start and end of the period that t falls in, as seen
// in loc (nil means UTC). For [None] it returns zero times.
//
// Local-time arithmetic keeps DST right: a day in a zone that springs
// forward lasts 23 hours and its budget still resets at local midnight.
func (p Period) Bounds(t time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	y, m, d := t.Date()
	switch p {
	case Hour:
		// Subtracting the local minutes keeps zones with :30 and :45 offsets
		// on their own hour, and avoids time.Date's ambiguity in the repeated
		// hour of a fall-back night.
		// (Australia/Lord_Howe, whose DST shift is 30 minutes, gets uneven
		// hours around its transitions; no other zone does.)
		start = hourStart(t)
		return start, start.Add(time.Hour)
	case Day:
		return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	case Week:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, loc), time.Date(y, m, d-back+7, 0, 0, 0, 0, loc)
	case Days30:
		// The civil day number does not depend on the zone's offset, so a
		// 30-day period starts on the same local date everywhere.
		day := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
		first := day - mod(day, 30)
		sy, sm, sd := time.Unix(first*86400, 0).UTC().Date()
		return time.Date(sy, sm, sd, 0, 0, 0, 0, loc), time.Date(sy, sm, sd+30, 0, 0, 0, 0, loc)
	case Month:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc), time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
	}
	return time.Time{}, time.Time{}
}

func hourStart(t time.Time) time.Time {
	return t.Add(-time.Duration(t.Minute())*time.Minute - time.Duration(t.Second())*time.Second - time.Duration(t.Nanosecond()))
}

func mod(a, b int64) int64 {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

// MicroUSD is money in millionths of a US dollar. Counters hold integers so
// that Redis and the in-memory store add exactly; a float budget would
// drift and could admit one request too many.
type MicroUSD = int64

// FromUSD converts dollars to [MicroUSD], rounding up: a budget check that
// rounds down could let a request through that the budget cannot pay for.
func FromUSD(usd float64) MicroUSD {
	// Rounding to nano-dollars first drops float noise (0.1*1e6 is
	// 100000.00000000001), so that only real fractions round up.
	return int64(math.Ceil(math.Round(usd*1e9) / 1e3))
}

// FormatUSD shows an amount for a client: "$5.00", "$1.50", "$0.0001",
// "$0.000123". It keeps every non-zero micro-dollar digit (at least two
// decimals), so a small budget never reads as "$0.00".
func FormatUSD(m MicroUSD) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	s := fmt.Sprintf("%s$%d.%06d", sign, m/1_000_000, m%1_000_000)
	for n := len(s); s[n-1] == '0' && s[n-3] != '.'; n-- {
		s = s[:n-1]
	}
	return s
}

// USD converts back for display.
func USD(m MicroUSD) float64 { return float64(m) / 1e6 }
