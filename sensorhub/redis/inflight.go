package redis

import goredis "github.com/redis/go-redis/v9"

// acquire takes at least one and at most n slots, waiting for the first.
// With Bundles it first takes a bundle slot, which the entries' deliverAll
// gives back. It returns 0, holding nothing, once the subscription ends.
func (s *subscription) acquire(n int) int {
	if s.bundles != nil {
		select {
		case s.bundles <- struct{}{}:
		case <-s.ctx.Done():
			return 0
		}
	}
	select {
	case s.slots <- struct{}{}:
	case <-s.ctx.Done():
		s.endBundle()
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

// endBundle gives back the bundle slot of a read or claim, once its bundle
// is settled or when it delivers none; without Bundles it does nothing.
func (s *subscription) endBundle() {
	if s.bundles != nil {
		<-s.bundles
	}
}

// release gives back n slots.
func (s *subscription) release(n int) {
	for range n {
		<-s.slots
	}
}

// hold records entries as in hand and returns those that were not in hand
// already, in order. It is the one gate every delivery passes: the re-read
// of the pending list, XAUTOCLAIM and keep-alive may all name an entry this
// process holds, and an entry in hand is never delivered a second time.
func (s *subscription) hold(entries []goredis.XMessage) []goredis.XMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := make([]goredis.XMessage, 0, len(entries))
	for _, e := range entries {
		if _, ok := s.inFlight[e.ID]; !ok {
			s.inFlight[e.ID] = struct{}{}
			fresh = append(fresh, e)
		}
	}
	return fresh
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
