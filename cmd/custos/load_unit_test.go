package main

import (
	"testing"
	"time"
)

// TestFDBudget: the connection budget is what the reserve leaves, at two
// descriptors a connection, and nothing while the descriptors really
// open leave less than the reserve free (exports holding files, say).
func TestFDBudget(t *testing.T) {
	if got, want := connBudget(256, 4, 0), (256-64-32)/2; got != want {
		t.Errorf("connBudget(256, 4 streams) = %d, want %d", got, want)
	}
	if got := connBudget(100, 10, 5); got != 0 {
		t.Errorf("connBudget with more reserved than the limit = %d, want 0", got)
	}
	if got := connBudget(0, 4, 0); got != -1 {
		t.Errorf("connBudget with an unknown limit = %d, want -1 (no bound)", got)
	}
	now := time.Unix(1000, 0)
	open, reads := 50, 0
	b := &fdBudget{limit: 256, streams: func() int { return 4 }, live: func() int { return 1 },
		openFiles: func() (int, bool) { reads++; return open, true }, now: func() time.Time { return now }}
	if got, want := b.conns(), (256-64-32-8)/2; got != want {
		t.Errorf("budget with 50 open: %d, want %d", got, want)
	}
	// 170 open: 86 free, under the 96 the four streams' reserve needs.
	open = 170
	if got := b.conns(); got != 76 || reads != 1 {
		t.Errorf("within %v of the last count: %d (reads %d), want the cached answer 76", fdRecount, got, reads)
	}
	now = now.Add(fdRecount)
	if got := b.conns(); got != 0 || reads != 2 {
		t.Errorf("budget with 170 of 256 open: %d (reads %d), want 0", got, reads)
	}
}
