package main

import "testing"

func TestSummarizeAIGW(t *testing.T) {
	rows := []Row{
		{Server: "null", Config: "openai", Concurrency: 64, Requests: 10, CPUusPerReq: 100},
		{Server: "weir", Config: "openai", Concurrency: 64, Requests: 10, CPUusPerReq: 120},
		{Server: "aigw", Config: "openai", Concurrency: 64, Requests: 10, CPUusPerReq: 200},
		{Server: "null-aigw", Config: "openai", Concurrency: 64, Requests: 10, CPUusPerReq: 90},
		{Server: "aigw", Config: "openai", Concurrency: 1, Requests: 10, CPUusPerReq: 999},
		// anthropic: aigw failed, so no comparison.
		{Server: "weir", Config: "anthropic", Concurrency: 64, Requests: 10, CPUusPerReq: 150},
		{Server: "aigw", Config: "anthropic", Concurrency: 64, Failed: "probe request failed"},
	}
	got := summarizeAIGW(rows, 64)
	if len(got) != 1 {
		t.Fatalf("got %d summaries, want 1: %+v", len(got), got)
	}
	s := got[0]
	if s.Config != "openai" || s.WeirCPUus != 120 || s.AIGWCPUus != 200 || s.Ratio != 0.6 ||
		s.WeirOverNull == nil || *s.WeirOverNull != 20 || s.AIGWOverNullAIGW == nil || *s.AIGWOverNullAIGW != 110 {
		t.Errorf("summary %+v", s)
	}
}
