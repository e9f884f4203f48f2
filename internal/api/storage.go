package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
)

// Disk is a storage directory as the API reports it.
type Disk struct {
	Name, Path string
	// MinFree is the space retention keeps free (bytes); MinFreePercent,
	// when positive, is that floor as a percentage of the disk's size
	// (the larger applies, as in retention).
	MinFree        int64
	MinFreePercent float64
	// Usage returns the file system's size and free space; nil when
	// unknown. An error is reported as the disk's error.
	Usage func() (total, free uint64, err error)
}

// CameraConfig is what the API shows of a camera's configuration: never
// its password; the URLs, user name and transport only to operators and
// admins (URLs without credentials).
type CameraConfig struct {
	// Source is "config" (the configuration file: read-only here) or
	// "api" (added in the UI: editable).
	Source      string `json:"source"`
	URL         string `json:"url,omitempty"`
	SubURL      string `json:"sub_url,omitempty"`
	Username    string `json:"username,omitempty"`
	HasPassword bool   `json:"has_password,omitempty"`
	Transport   string `json:"transport,omitempty"`
	// AllowBasicAuth: Basic over plain RTSP is allowed (operators only).
	AllowBasicAuth bool   `json:"allow_basic_auth,omitempty"`
	Storage        string `json:"storage"`
	// MaxAgeHours and MaxBytes are its retention limits; zero means none.
	MaxAgeHours float64 `json:"max_age_hours"`
	MaxBytes    int64   `json:"max_bytes"`
}

// forViewer drops what only operators see.
func (c CameraConfig) forViewer() CameraConfig {
	return CameraConfig{Source: c.Source, Storage: c.Storage, MaxAgeHours: c.MaxAgeHours, MaxBytes: c.MaxBytes}
}

// DiskJSON is one disk in GET /api/storage.
type DiskJSON struct {
	Name       string    `json:"name"`
	Path       string    `json:"path"`
	TotalBytes uint64    `json:"total_bytes"`
	FreeBytes  uint64    `json:"free_bytes"`
	MinFree    int64     `json:"min_free_bytes"`
	Recordings int64     `json:"recording_bytes"`
	Segments   int64     `json:"segments"`
	Oldest     time.Time `json:"oldest,omitzero"`
	// BytesPerDay is the write rate over the last 24 hours (or since the
	// oldest recording, when younger).
	BytesPerDay float64 `json:"bytes_per_day"`
	// DaysKept estimates how many days of recordings the disk holds at
	// that rate once full: (recordings + free − min_free) / rate.
	DaysKept float64 `json:"days_kept,omitempty"`
	Error    string  `json:"error,omitempty"`
	// LockedFull is the alarm of a disk below min_free whose remaining
	// recordings are held by evidence locks: nothing more can be freed;
	// recording goes on until the disk is full. Alarm says so in words.
	LockedFull bool   `json:"locked_full"`
	Alarm      string `json:"alarm,omitempty"`
}

// lockedFullMessage is the alarm text of a disk full of locked video.
func lockedFullMessage(a retention.LockedFull) string {
	return fmt.Sprintf("storage %s is below min_free (%d bytes free) and evidence locks hold all %d segments retention could delete, since %s: "+
		"recording goes on until the disk is full; release locks or add space", a.Disk, a.Free, a.Locked, a.Since.UTC().Format(time.RFC3339))
}

// lockedFullReason adds the alarm of the stream's disk to the reason of a
// stream that is not recording (its writes fail once the disk is full of
// locked video, and it reconnects).
func (s *Server) lockedFullReason(st recorder.Status, disk string) recorder.Status {
	if (st.State != recorder.StateError && st.State != recorder.StateReconnecting) || s.LockedFull == nil {
		return st
	}
	if a, ok := s.LockedFull()[disk]; ok {
		st.Reason += " (" + lockedFullMessage(a) + ")"
	}
	return st
}

// storageCache keeps GET /api/storage's index sums for a minute: they
// read every segment row.
type storageCache struct {
	at   time.Time
	body []DiskJSON
}

func (s *Server) storage(w http.ResponseWriter, r *http.Request) {
	s.storageMu.Lock()
	defer s.storageMu.Unlock()
	now := time.Now()
	if s.storageCache.body != nil && now.Sub(s.storageCache.at) < time.Minute {
		writeJSON(w, http.StatusOK, s.refreshFree(s.storageCache.body))
		return
	}
	usage, err := s.Index.DiskUsage(r.Context(), now.Add(-24*time.Hour))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]DiskJSON, 0, len(s.Disks))
	for _, d := range s.Disks {
		dj := DiskJSON{Name: d.Name, Path: d.Path, MinFree: d.MinFree}
		for _, u := range usage {
			if u.Disk != d.Name {
				continue
			}
			dj.Recordings, dj.Segments, dj.Oldest = u.Bytes, u.Segments, u.Oldest
			span := min(24*time.Hour, now.Sub(u.Oldest))
			if span > time.Minute {
				dj.BytesPerDay = float64(u.BytesSince) / span.Hours() * 24
			}
		}
		out = append(out, dj)
	}
	s.storageCache.at, s.storageCache.body = now, out
	writeJSON(w, http.StatusOK, s.refreshFree(out))
}

// refreshFree fills the file systems' sizes (cheap: statfs) into a copy.
func (s *Server) refreshFree(in []DiskJSON) []DiskJSON {
	out := append([]DiskJSON(nil), in...)
	var alarms map[string]retention.LockedFull
	if s.LockedFull != nil {
		alarms = s.LockedFull()
	}
	for i := range out {
		d := &out[i]
		if a, ok := alarms[d.Name]; ok {
			d.LockedFull, d.Alarm = true, lockedFullMessage(a)
		}
		for _, cfg := range s.Disks {
			if cfg.Name != d.Name || cfg.Usage == nil {
				continue
			}
			total, free, err := cfg.Usage()
			if err != nil {
				d.Error = err.Error()
				continue
			}
			d.TotalBytes, d.FreeBytes = total, free
			if cfg.MinFreePercent > 0 {
				d.MinFree = max(cfg.MinFree, int64(cfg.MinFreePercent/100*float64(total)))
			}
			if d.BytesPerDay > 0 {
				d.DaysKept = (float64(d.Recordings) + float64(free) - float64(d.MinFree)) / d.BytesPerDay
			}
		}
	}
	return out
}
