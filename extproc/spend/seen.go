package spend

// Seen remembers recent request ids so that a sink counts a redelivered
// record once. A redelivery can only concern records still unacknowledged
// at the source, which are recent, so Seen keeps two generations of at
// most Window ids each and forgets older ones: memory stays bounded on a
// long-running gateway instead of growing with every request ever served.
type Seen struct {
	// Window is the ids per generation; zero means DefaultSeenWindow.
	Window   int
	cur, old map[string]struct{}
}

// DefaultSeenWindow comfortably exceeds any unacknowledged backlog (the
// writer reads batches of 256).
const DefaultSeenWindow = 10_000

// Has reports whether id was added within the last one or two windows.
func (s *Seen) Has(id string) bool {
	if _, ok := s.cur[id]; ok {
		return true
	}
	_, ok := s.old[id]
	return ok
}

// Add remembers id, rotating generations when the current one is full.
func (s *Seen) Add(id string) {
	w := s.Window
	if w <= 0 {
		w = DefaultSeenWindow
	}
	if s.cur == nil {
		s.cur = make(map[string]struct{})
	}
	if len(s.cur) >= w {
		s.old, s.cur = s.cur, make(map[string]struct{}, w/4)
	}
	s.cur[id] = struct{}{}
}
