// Package audit keeps the tamper-evident audit log: a hash chain of
// entries (who did what, to which camera, with what result) stored in the
// index database and copied, line by line, to a plain file beside it, so
// that altering, removing, reordering or inserting an entry in either copy
// is found by Verify (docs/security.md, "The audit log").
package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Entry is one audit record.
type Entry struct {
	Seq    int64             // 1, 2, 3 … with no holes
	Time   time.Time         // stored as UTC Unix nanoseconds
	Actor  string            // user name, "" for the system (retention, check)
	Addr   string            // client address, "" for the system
	Action string            // one of the Action constants
	Camera string            // "" when not about one camera
	Detail map[string]string // small key/values (range, reason, target user, count…); nil ok
	Result string            // ResultOK, ResultDenied or ResultFailed
	Prev   []byte            // hash of entry Seq-1 (32 zero bytes for Seq 1)
	Hash   []byte            // SHA-256, see ComputeHash
}

// Actions.
const (
	Login           = "login"
	LoginFailed     = "login_failed"
	Logout          = "logout"
	SessionRevoke   = "session_revoke"
	LiveStart       = "live_start"
	LiveStop        = "live_stop"
	Playback        = "playback"
	Export          = "export"
	Thumbnail       = "thumbnail"
	CameraAdd       = "camera_add"
	CameraChange    = "camera_change"
	CameraRemove    = "camera_remove"
	ConfigChange    = "config_change"
	UserAdd         = "user_add"
	UserDelete      = "user_delete"
	UserChange      = "user_change"
	GrantChange     = "grant_change"
	TokenAdd        = "token_add"
	TokenDelete     = "token_delete"
	RetentionDelete = "retention_delete"
	Check           = "check"
	Repair          = "repair"
	Probe           = "probe"
	AuditRead       = "audit_read"
	Start           = "start"
	EvidenceLock    = "evidence_lock"
	EvidenceUnlock  = "evidence_unlock"
	// Denied is a refused request (401, 403), aggregated per source,
	// user, reason and minute (Aggregator).
	Denied = "denied"
	// UserUnlock clears a user name's failed-login counters.
	UserUnlock = "user_unlock"
	// AuditRepair records that Open copied entries the file lacked from
	// the index into audit.log (detail: from, to, count, within_bound).
	AuditRepair = "audit_repair"
)

// Results.
const (
	ResultOK     = "ok"
	ResultDenied = "denied"
	ResultFailed = "failed"
)

// actions is the set Append accepts; a new action is added here and above.
var actions = map[string]bool{
	Login: true, LoginFailed: true, Logout: true, SessionRevoke: true,
	LiveStart: true, LiveStop: true, Playback: true, Export: true, Thumbnail: true,
	CameraAdd: true, CameraChange: true, CameraRemove: true, ConfigChange: true,
	UserAdd: true, UserDelete: true, UserChange: true, GrantChange: true,
	TokenAdd: true, TokenDelete: true, RetentionDelete: true,
	Check: true, Repair: true, Probe: true, AuditRead: true, Start: true,
	EvidenceLock: true, EvidenceUnlock: true,
	Denied: true, UserUnlock: true, AuditRepair: true,
}

// Actions returns every action Append accepts, sorted: the one list the
// UI's audit filter shows (GET /api/audit/actions), so it cannot miss an
// action added here.
func Actions() []string {
	out := make([]string, 0, len(actions))
	for a := range actions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// HashSize is the length of Entry.Prev and Entry.Hash.
const HashSize = sha256.Size

// maxLine bounds one entry's line in the file (newline included); Append
// refuses bigger entries, Verify reports longer lines.
const maxLine = 64 << 10

// hashDomain starts every hashed message, so that an entry's hash cannot
// be mistaken for the hash of anything else Custos signs or chains.
const hashDomain = "custos-audit-v1"

// ComputeHash returns the SHA-256 of Prev and every other field except
// Hash, over an unambiguous binary encoding: the bytes "custos-audit-v1",
// then Seq and Time (Unix nanoseconds) as 8-byte big-endian integers, then
// Actor, Addr, Action, Camera, each as an 8-byte big-endian length and its
// bytes, then the number of Detail keys (8 bytes) and each key and value
// in increasing key order (length-prefixed likewise), then Result and Prev
// (length-prefixed). A nil and an empty Detail hash alike. It does no I/O
// and does not modify e; it is safe for concurrent use on an entry that
// nobody modifies.
func (e *Entry) ComputeHash() []byte {
	h := sha256.New()
	var n [8]byte
	putInt := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	putStr := func(s string) {
		putInt(uint64(len(s)))
		h.Write([]byte(s))
	}
	h.Write([]byte(hashDomain))
	putInt(uint64(e.Seq))
	putInt(uint64(e.Time.UnixNano()))
	putStr(e.Actor)
	putStr(e.Addr)
	putStr(e.Action)
	putStr(e.Camera)
	keys := make([]string, 0, len(e.Detail))
	for k := range e.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	putInt(uint64(len(keys)))
	for _, k := range keys {
		putStr(k)
		putStr(e.Detail[k])
	}
	putStr(e.Result)
	putInt(uint64(len(e.Prev)))
	h.Write(e.Prev)
	return h.Sum(nil)
}

// validate checks what Append accepts from a caller: a known action and
// result, and valid UTF-8 everywhere (the JSON line could not round-trip
// anything else).
func validate(e *Entry) error {
	if !actions[e.Action] {
		return fmt.Errorf("unknown action %q", e.Action)
	}
	switch e.Result {
	case ResultOK, ResultDenied, ResultFailed:
	default:
		return fmt.Errorf("unknown result %q", e.Result)
	}
	for _, s := range []string{e.Actor, e.Addr, e.Camera} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("invalid UTF-8 in %q", s)
		}
	}
	for k, v := range e.Detail {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("invalid UTF-8 in detail %q", k)
		}
	}
	return nil
}

// equal reports whether a and b hold the same fields (nil and empty
// Detail alike) and returns the name of the first field that differs.
func equal(a, b *Entry) (bool, string) {
	switch {
	case a.Seq != b.Seq:
		return false, "seq"
	case a.Time.UnixNano() != b.Time.UnixNano():
		return false, "time"
	case a.Actor != b.Actor:
		return false, "actor"
	case a.Addr != b.Addr:
		return false, "addr"
	case a.Action != b.Action:
		return false, "action"
	case a.Camera != b.Camera:
		return false, "camera"
	case len(a.Detail) != len(b.Detail):
		return false, "detail"
	case a.Result != b.Result:
		return false, "result"
	case !bytes.Equal(a.Prev, b.Prev):
		return false, "prev"
	case !bytes.Equal(a.Hash, b.Hash):
		return false, "hash"
	}
	for k, v := range a.Detail {
		if w, ok := b.Detail[k]; !ok || w != v {
			return false, "detail"
		}
	}
	return true, ""
}

// CorruptError is returned (possibly wrapped) by a Store for a stored
// entry it cannot decode, such as a detail column that is not a JSON
// object of strings. Verify reports it as a problem at Seq.
type CorruptError struct {
	Seq int64
	Err error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("audit entry %d: %v", e.Seq, e.Err) }
func (e *CorruptError) Unwrap() error { return e.Err }

// Store is what the log needs from the index database (sqlite.Store
// implements it). Implementations are safe for concurrent use; every
// method does I/O and blocks.
type Store interface {
	// AppendAudit inserts e (Seq, Hash already set) durably. It fails if
	// Seq is not last+1.
	AppendAudit(ctx context.Context, e Entry) error
	// AuditEntries returns entries with Seq > after in Seq order, at most
	// limit (limit<=0: all).
	AuditEntries(ctx context.Context, after int64, limit int) ([]Entry, error)
	// LastAudit returns the entry with the highest Seq; ok=false when empty.
	LastAudit(ctx context.Context) (e Entry, ok bool, err error)
	// QueryAudit returns entries matching f, newest (highest Seq) first.
	QueryAudit(ctx context.Context, f Filter) ([]Entry, error)
}

// Filter selects entries for QueryAudit. Empty fields match everything.
type Filter struct {
	From, To time.Time // From <= Time < To; a zero bound is open
	Actor    string
	Action   string
	Camera   string
	// BeforeSeq pages backwards: only entries with Seq < BeforeSeq
	// (0: no bound).
	BeforeSeq int64
	Limit     int // default 100, max 1000
}

// line is the JSON form of an entry in the file. Every field is always
// present so that a line describes itself.
type line struct {
	Seq    int64             `json:"seq"`
	At     string            `json:"at"`
	Actor  string            `json:"actor"`
	Addr   string            `json:"addr"`
	Action string            `json:"action"`
	Camera string            `json:"camera"`
	Detail map[string]string `json:"detail"`
	Result string            `json:"result"`
	Prev   string            `json:"prev"`
	Hash   string            `json:"hash"`
}

// encodeLine returns e's line, newline included: the canonical form that
// parseLine accepts. It does no I/O.
func encodeLine(e *Entry) ([]byte, error) {
	l := line{
		Seq: e.Seq, At: e.Time.UTC().Format(time.RFC3339Nano),
		Actor: e.Actor, Addr: e.Addr, Action: e.Action, Camera: e.Camera,
		Detail: e.Detail, Result: e.Result,
		Prev: hex.EncodeToString(e.Prev), Hash: hex.EncodeToString(e.Hash),
	}
	if l.Detail == nil {
		l.Detail = map[string]string{}
	}
	b, err := json.Marshal(&l)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseLine parses one line of the file (without its newline). It accepts
// only the canonical form encodeLine writes, so that every byte of a line
// matters: any edit either fails to parse or changes a hashed field. It
// does no I/O.
func parseLine(b []byte) (Entry, error) {
	// Unknown, missing, repeated or reordered fields pass Unmarshal but
	// fail the canonical comparison at the end.
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Entry{}, fmt.Errorf("not an audit entry: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, l.At)
	if err != nil {
		return Entry{}, fmt.Errorf("bad time: %w", err)
	}
	e := Entry{
		Seq: l.Seq, Time: t.UTC(), Actor: l.Actor, Addr: l.Addr, Action: l.Action,
		Camera: l.Camera, Detail: l.Detail, Result: l.Result,
	}
	if len(e.Detail) == 0 {
		e.Detail = nil
	}
	if e.Prev, err = hex.DecodeString(l.Prev); err != nil || len(e.Prev) != HashSize {
		return Entry{}, fmt.Errorf("bad prev %q", l.Prev)
	}
	if e.Hash, err = hex.DecodeString(l.Hash); err != nil || len(e.Hash) != HashSize {
		return Entry{}, fmt.Errorf("bad hash %q", l.Hash)
	}
	canon, err := encodeLine(&e)
	if err != nil {
		return Entry{}, err
	}
	if !bytes.Equal(canon[:len(canon)-1], b) {
		return Entry{}, errors.New("not in canonical form")
	}
	return e, nil
}
