package budget

import (
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestBounds(t *testing.T) {
	ny := mustLoad(t, "America/New_York")
	berlin := mustLoad(t, "Europe/Berlin")
	kolkata := mustLoad(t, "Asia/Kolkata")
	kathmandu := mustLoad(t, "Asia/Kathmandu")
	sydney := mustLoad(t, "Australia/Sydney")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name       string
		p          Period
		loc        *time.Location
		at         string
		start, end string // RFC3339 with offsets
	}{
		{"day utc", Day, nil, "2026-03-08T12:00:00Z", "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z"},
		// 2026-03-08 is the US spring-forward day: 23 hours long.
		{"day ny spring forward", Day, ny, "2026-03-08T12:00:00Z", "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"},
		// 2026-11-01 falls back: 25 hours.
		{"day ny fall back", Day, ny, "2026-11-01T23:30:00Z", "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"},
		{"day ny before midnight local is previous day", Day, ny, "2026-06-01T03:59:59Z", "2026-05-31T00:00:00-04:00", "2026-06-01T00:00:00-04:00"},
		{"day ny at local midnight starts new day", Day, ny, "2026-06-01T04:00:00Z", "2026-06-01T00:00:00-04:00", "2026-06-02T00:00:00-04:00"},
		// The repeated hour 01:00-02:00 of the fall-back night: the second
		// 01:30 (EST) is in its own hour.
		{"hour ny repeated hour first", Hour, ny, "2026-11-01T05:30:00Z", "2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"},
		{"hour ny repeated hour second", Hour, ny, "2026-11-01T06:30:00Z", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"},
		{"hour kolkata half offset", Hour, kolkata, "2026-01-01T10:10:00Z", "2026-01-01T15:00:00+05:30", "2026-01-01T16:00:00+05:30"},
		{"hour kathmandu 45 offset", Hour, kathmandu, "2026-01-01T10:10:00Z", "2026-01-01T15:00:00+05:45", "2026-01-01T16:00:00+05:45"},
		{"month utc", Month, nil, "2026-02-28T23:59:59Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		{"month berlin: utc still february, berlin march", Month, berlin, "2026-02-28T23:30:00Z", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"},
		{"month ny: utc march, ny still february", Month, ny, "2026-03-01T03:00:00Z", "2026-02-01T00:00:00-05:00", "2026-03-01T00:00:00-05:00"},
		{"month december rolls year", Month, sydney, "2026-12-31T13:00:00Z", "2027-01-01T00:00:00+11:00", "2027-02-01T00:00:00+11:00"},
		{"month leap february", Month, nil, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
		// 2026-03-11 is a Wednesday; the week starts Monday 03-09, across
		// the US DST change of Sunday 03-08 not included.
		{"week ny", Week, ny, "2026-03-11T12:00:00Z", "2026-03-09T00:00:00-04:00", "2026-03-16T00:00:00-04:00"},
		{"week sunday belongs to previous monday", Week, nil, "2026-03-08T23:00:00Z", "2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z"},
		{"week spanning dst", Week, ny, "2026-03-05T12:00:00Z", "2026-03-02T00:00:00-05:00", "2026-03-09T00:00:00-04:00"},
		// Day 20520 since 1970 (2026-03-08) is a multiple of 30.
		{"30d", Days30, nil, "2026-03-20T00:00:00Z", "2026-03-08T00:00:00Z", "2026-04-07T00:00:00Z"},
		{"30d ny across dst", Days30, ny, "2026-03-20T00:00:00Z", "2026-03-08T00:00:00-05:00", "2026-04-07T00:00:00-04:00"},
		{"30d sydney is a local date", Days30, sydney, "2026-03-07T14:00:00Z", "2026-03-08T00:00:00+11:00", "2026-04-07T00:00:00+10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := tt.p.Bounds(utc(tt.at), tt.loc)
			if !start.Equal(utc(tt.start)) || !end.Equal(utc(tt.end)) {
				t.Errorf("Bounds(%s) = %s .. %s, want %s .. %s", tt.at, start, end, tt.start, tt.end)
			}
			at := utc(tt.at)
			if at.Before(start) || !at.Before(end) {
				t.Errorf("%s not in [%s, %s)", at, start, end)
			}
		})
	}
}

// TestBoundsContiguous walks a year in several zones: each period ends where
// the next starts, so no instant is in two periods or none.
func TestBoundsContiguous(t *testing.T) {
	for _, name := range []string{"UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Chatham"} {
		loc := mustLoad(t, name)
		for _, p := range []Period{Hour, Day, Week, Days30, Month} {
			if p == Hour && name == "Australia/Lord_Howe" {
				continue // its 30-minute DST shift; documented on Bounds
			}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			stop := at.AddDate(1, 0, 0)
			start, end := p.Bounds(at, loc)
			for start.Before(stop) {
				ns, ne := p.Bounds(end, loc)
				if !ns.Equal(end) {
					t.Fatalf("%s %s: period after [%s, %s) starts at %s", name, p, start, end, ns)
				}
				if !ne.After(ns) {
					t.Fatalf("%s %s: empty period at %s", name, p, ns)
				}
				// An instant just before the end is still in the period.
				if s, _ := p.Bounds(end.Add(-time.Nanosecond), loc); !s.Equal(start) {
					t.Fatalf("%s %s: %s maps to %s, want %s", name, p, end.Add(-time.Nanosecond), s, start)
				}
				start, end = ns, ne
			}
		}
	}
}

func TestParsePeriod(t *testing.T) {
	for _, s := range []string{"", "1h", "1d", "7d", "30d", "1mo"} {
		if _, err := ParsePeriod(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"2h", "1m", "month", "1mo "} {
		if _, err := ParsePeriod(s); err == nil {
			t.Errorf("%q: want error", s)
		}
	}
}

func TestFromUSD(t *testing.T) {
	for _, tt := range []struct {
		usd  float64
		want int64
	}{{0.1, 100000}, {10, 10000000}, {0.0000001, 1}, {0.0000015, 2}, {1e-12, 0}, {0.3, 300000}} {
		if got := FromUSD(tt.usd); got != tt.want {
			t.Errorf("FromUSD(%v) = %d, want %d", tt.usd, got, tt.want)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	tests := []struct {
		in   MicroUSD
		want string
	}{
		{0, "$0.00"},
		{100, "$0.0001"},
		{123, "$0.000123"},
		{1, "$0.000001"},
		{10_000, "$0.01"},
		{1_500_000, "$1.50"},
		{5_000_000, "$5.00"},
		{1_234_567_891, "$1234.567891"},
		{-100, "-$0.0001"},
	}
	for _, tc := range tests {
		if got := FormatUSD(tc.in); got != tc.want {
			t.Errorf("FormatUSD(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
