package redis

// acquire takes at least one and at most n slots, waiting for the first. It
// returns 0 once the subscription ends.
func (s *subscription) acquire(n int) int {
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		return 0
	}
	got := 1
	for got < n {
		select {
		case s.slots <- struct{}{}:
			got++
		default:
			return got
		}
	}
	return got
}

// release gives back n slots.
func (s *subscription) release(n int) {
	for range n {
		<-s.slots
	}
}

// hold records entries as in hand, before they are delivered.
func (s *subscription) hold(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.inFlight[id] = struct{}{}
	}
}

// holding reports whether the entry id is in hand.
func (s *subscription) holding(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.inFlight[id]
	return ok
}

// held returns the ids of the entries in hand.
func (s *subscription) held() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.inFlight))
	for id := range s.inFlight {
		ids = append(ids, id)
	}
	return ids
}

// done forgets a finished entry and frees its slot.
func (s *subscription) done(id string) {
	s.mu.Lock()
	delete(s.inFlight, id)
	s.mu.Unlock()
	s.release(1)
}
