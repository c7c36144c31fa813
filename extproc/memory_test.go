package extproc

import (
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// TestReleaseMemoryOffTheApplyPath: a config apply returns (so an xDS
// replica ACKs at once) without waiting for the heap to be handed back to
// the OS, and applies made during a release coalesce into one more
// release, which Close waits for.
func TestReleaseMemoryOffTheApplyPath(t *testing.T) {
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var calls atomic.Int32
	s := New(Options{ReleaseMemory: func() {
		calls.Add(1)
		entered <- struct{}{}
		<-release
	}})
	applied := make(chan error, 1)
	go func() { applied <- s.LoadConfig([]byte(testConfig), os.LookupEnv) }()
	// The bound only ends a test whose apply waits for the release.
	bound := time.After(30 * time.Second)
	for range 2 {
		select {
		case <-entered:
		case err := <-applied:
			if err != nil {
				t.Fatal(err)
			}
		case <-bound:
			t.Fatal("the apply waited for the memory release")
		}
	}
	for range 3 {
		if err := s.LoadConfig([]byte(testConfig), os.LookupEnv); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("memory released %d times, want 2 (the first apply's, then one for the three made meanwhile)", n)
	}
}
