package auth

// ThrottleSizes returns the number of entries in each throttle table
// (pair, address, user), for tests.
func ThrottleSizes(s *Service) (pair, addr, user int) { return s.lim.size() }
