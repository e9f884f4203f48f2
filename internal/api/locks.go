package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
	"github.com/custos-nvr/custos/internal/store"
)

// Evidence lock limits (docs/security.md, "Evidence locks").
const (
	// maxLockSpan bounds one evidence lock, an admin's too.
	maxLockSpan = 366 * 24 * time.Hour
	// lockFutureSlack is how far past now a lock may end (clocks of the
	// browser and the server differ a little).
	lockFutureSlack = time.Minute
	// defaultLockMaxSpan and defaultLockMaxActive apply when the Server
	// fields are zero.
	defaultLockMaxSpan   = 31 * 24 * time.Hour
	defaultLockMaxActive = 20
)

// LockJSON is an evidence lock.
type LockJSON struct {
	ID            int64     `json:"id"`
	Camera        string    `json:"camera"`
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	Reason        string    `json:"reason"`
	CreatedBy     string    `json:"created_by"`
	Created       time.Time `json:"created"`
	Active        bool      `json:"active"`
	ReleasedBy    string    `json:"released_by,omitempty"`
	Released      time.Time `json:"released,omitzero"`
	ReleaseReason string    `json:"release_reason,omitempty"`
}

func lockJSON(l store.Lock) LockJSON {
	return LockJSON{ID: l.ID, Camera: l.Camera, From: l.From, To: l.To, Reason: l.Reason, CreatedBy: l.CreatedBy,
		Created: l.Created, Active: l.Active(), ReleasedBy: l.ReleasedBy, Released: l.Released, ReleaseReason: l.ReleaseReason}
}

func validReason(s string) error {
	if strings.TrimSpace(s) == "" || len(s) > 500 {
		return &Error{Status: http.StatusBadRequest, Message: "reason: say why, in 1 to 500 characters"}
	}
	return nil
}

// locks serves GET /api/cameras/{name}/locks?from&to[&released=1]: the
// camera's evidence locks overlapping the range (active only unless
// released=1).
func (s *Server) locks(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.camera(name); !ok {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return
	}
	from, to, err := parseRange(r, 0)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ls, err := s.Index.Locks(r.Context(), name, from, to, r.URL.Query().Get("released") != "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []LockJSON{}
	for _, l := range ls {
		out = append(out, lockJSON(l))
	}
	writeJSON(w, http.StatusOK, out)
}

// addLock serves POST /api/cameras/{name}/locks {"from","to","reason"}:
// retention and deletion leave the range's recordings alone until an
// admin releases the lock. It needs the lock permission on the camera. A
// lock covers recorded time only (to at most now + lockFutureSlack: 400);
// a non-admin's lock spans at most LockMaxSpan (400) and a non-admin
// holds at most LockMaxActive unreleased locks (409).
func (s *Server) addLock(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := s.camera(name); !ok {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no camera named %q", name)})
		return
	}
	var req struct {
		From   time.Time `json:"from"`
		To     time.Time `json:"to"`
		Reason string    `json:"reason"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.From.IsZero() || req.To.IsZero():
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "from and to are required (RFC 3339 times)"})
		return
	case !req.To.After(req.From):
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "to must be after from"})
		return
	case req.To.Sub(req.From) > maxLockSpan:
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf("a lock spans at most %s", maxLockSpan)})
		return
	case req.To.After(s.now().Add(lockFutureSlack)):
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(
			"to=%s is in the future: a lock keeps video already recorded (lock again later to extend it)", req.To.UTC().Format(time.RFC3339))})
		return
	}
	if err := validReason(req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	u := &who(r).user
	maxSpan, maxActive := s.LockMaxSpan, s.LockMaxActive
	if maxSpan <= 0 {
		maxSpan = defaultLockMaxSpan
	}
	if maxActive <= 0 {
		maxActive = defaultLockMaxActive
	}
	if u.Role != auth.Admin && req.To.Sub(req.From) > maxSpan {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: fmt.Sprintf(
			"a lock spans at most %s (locks.max_span); ask an admin for a longer one", maxSpan)})
		return
	}
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if u.Role != auth.Admin {
		all, err := s.Index.Locks(r.Context(), "", time.Unix(0, 0), s.now().Add(100*365*24*time.Hour), false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		n := 0
		for _, l := range all {
			if l.CreatedBy == u.Name && l.Active() {
				n++
			}
		}
		if n >= maxActive {
			s.writeError(w, r, &Error{Status: http.StatusConflict, Message: fmt.Sprintf(
				"user %q holds %d active evidence locks, the most allowed (locks.max_active_per_user): an admin must release one first", u.Name, n)})
			return
		}
	}
	l := store.Lock{Camera: name, From: req.From, To: req.To, Reason: req.Reason, CreatedBy: u.Name, Created: s.now()}
	// Audited first: a lock nobody can account for is not set.
	if err := s.audit(r, audit.EvidenceLock, name, map[string]string{"from": req.From.UTC().Format(time.RFC3339Nano),
		"to": req.To.UTC().Format(time.RFC3339Nano), "reason": req.Reason}); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Index.AddLock(r.Context(), &l); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, lockJSON(l))
}

// releaseLock serves POST /api/locks/{id}/release {"reason"} (admins).
func (s *Server) releaseLock(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "lock id must be a positive number"})
		return
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := validReason(req.Reason); err != nil {
		s.writeError(w, r, err)
		return
	}
	all, err := s.Index.Locks(r.Context(), "", time.Unix(0, 0), time.Now().Add(100*365*24*time.Hour), true)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var lock *store.Lock
	for i := range all {
		if all[i].ID == id {
			lock = &all[i]
		}
	}
	if lock == nil {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Message: fmt.Sprintf("no lock %d", id)})
		return
	}
	if err := s.Index.ReleaseLock(r.Context(), id, who(r).user.Name, req.Reason, time.Now()); err != nil {
		if errors.Is(err, store.ErrReleased) {
			err = &Error{Status: http.StatusConflict, Message: fmt.Sprintf("lock %d is already released", id)}
		}
		s.writeError(w, r, err)
		return
	}
	s.audit(r, audit.EvidenceUnlock, lock.Camera, map[string]string{"lock": strconv.FormatInt(id, 10),
		"from": lock.From.UTC().Format(time.RFC3339Nano), "to": lock.To.UTC().Format(time.RFC3339Nano),
		"reason": req.Reason, "locked_for": lock.Reason})
	w.WriteHeader(http.StatusNoContent)
}
