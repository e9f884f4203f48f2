package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/auth"
)

// unlockUser serves POST /api/users/{user}/unlock (admins): forgets the
// user's failed logins (auth.Service.Unlock), audited as user_unlock.
func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("user")
	if _, err := s.Auth.Store().UserByName(r.Context(), name); err != nil {
		s.writeError(w, r, authError(err))
		return
	}
	if err := s.audit(r, audit.UserUnlock, "", map[string]string{"user": name}); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Auth.Unlock(name)
	w.WriteHeader(http.StatusNoContent)
}

// WatchUnlocks applies the user_unlock entries that other processes
// (custos user unlock) append to the audit log: every interval until ctx
// ends it reads the entries of that action appended since the last look
// (the throttle's counters live only in this process, so the audit entry
// is how the command reaches them) and calls svc.Unlock for each. It
// blocks; query failures are logged and retried at the next tick.
func WatchUnlocks(ctx context.Context, log *audit.Log, svc *auth.Service, interval time.Duration, logger *slog.Logger) {
	if logger == nil {
		logger = slog.Default()
	}
	since := time.Now()
	var lastSeq int64
	if es, err := log.Query(ctx, audit.Filter{Limit: 1}); err == nil && len(es) > 0 {
		lastSeq = es[0].Seq
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A minute of overlap covers another process's clock being a
		// little behind; seq says what is new.
		now := time.Now()
		es, err := log.Query(ctx, audit.Filter{From: since.Add(-time.Minute), Action: audit.UserUnlock, Limit: 1000})
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("api: reading user_unlock entries failed; will retry", "err", err)
			}
			continue
		}
		since = now
		for i := len(es) - 1; i >= 0; i-- { // oldest first
			if e := es[i]; e.Seq > lastSeq {
				lastSeq = e.Seq
				if u := e.Detail["user"]; u != "" {
					svc.Unlock(u)
					logger.Info("login throttle cleared", "user", u, "audit_seq", e.Seq)
				}
			}
		}
	}
}
