package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/custos-nvr/custos/internal/audit"
	"github.com/custos-nvr/custos/internal/cameras"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/rtsp"
)

// CameraSet lists the cameras served; List is called per request and
// must be safe for concurrent use.
type CameraSet interface {
	List() []Camera
}

// CameraList is a fixed CameraSet.
type CameraList []Camera

// List implements CameraSet.
func (l CameraList) List() []Camera { return l }

// CameraAdmin changes the cameras while the server runs
// (*cameras.Manager). Errors wrap cameras.ErrExists, ErrNotFound,
// ErrReadOnly or are *config.Error for a bad field.
type CameraAdmin interface {
	Add(ctx context.Context, c config.Camera) error
	Update(ctx context.Context, c config.Camera) error
	Remove(ctx context.Context, name string) error
}

// CameraRequest is the body of POST /api/cameras and PUT
// /api/cameras/{name}. An empty password on PUT keeps the stored one
// (when the user name is unchanged and no URL's host or port changed:
// otherwise 422); zero retention limits take the
// configuration's default.
type CameraRequest struct {
	Name        string  `json:"name"`
	URL         string  `json:"url"`
	SubURL      string  `json:"sub_url"`
	Username    string  `json:"username"`
	Password    string  `json:"password"`
	Transport   string  `json:"transport"`
	Storage     string  `json:"storage"`
	MaxAgeHours float64 `json:"max_age_hours"`
	MaxBytes    int64   `json:"max_bytes"`
	// AllowBasicAuth: the camera's allow_basic_auth (Basic over plain
	// RTSP sends its password in clear).
	AllowBasicAuth bool `json:"allow_basic_auth"`
}

func (c CameraRequest) config() (config.Camera, error) {
	if c.MaxAgeHours < 0 || c.MaxAgeHours > 100*365*24 || c.MaxBytes < 0 {
		return config.Camera{}, &Error{Status: http.StatusBadRequest, Message: "camera.retention: limits must be from 0 (the default) to 100 years"}
	}
	return config.Camera{Name: c.Name, URL: c.URL, SubURL: c.SubURL, Username: c.Username, Password: c.Password,
		Transport: c.Transport, Storage: c.Storage, AllowBasicAuth: c.AllowBasicAuth, Retention: config.Retention{
			MaxAge:   config.Duration(time.Duration(c.MaxAgeHours * float64(time.Hour))),
			MaxBytes: config.Bytes(c.MaxBytes)}}, nil
}

// cameraError maps camera management errors to statuses.
func cameraError(err error) error {
	var ce *config.Error
	switch {
	case errors.As(err, &ce):
		return &Error{Status: http.StatusBadRequest, Message: ce.Error()}
	case errors.Is(err, cameras.ErrExists), errors.Is(err, cameras.ErrReadOnly):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	case errors.Is(err, cameras.ErrPasswordNeeded):
		return &Error{Status: http.StatusUnprocessableEntity, Message: err.Error()}
	case errors.Is(err, cameras.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	}
	return err
}

// cameraDetail is what the audit log records of a camera (no password).
func cameraDetail(c config.Camera) map[string]string {
	d := map[string]string{"url": rtsp.RedactURL(c.URL), "storage": c.Storage, "transport": c.Transport,
		"max_age_hours": strconv.FormatFloat(time.Duration(c.Retention.MaxAge).Hours(), 'f', -1, 64),
		"max_bytes":     strconv.FormatInt(int64(c.Retention.MaxBytes), 10)}
	if c.AllowBasicAuth {
		d["allow_basic_auth"] = "true"
	}
	if c.SubURL != "" {
		d["sub_url"] = rtsp.RedactURL(c.SubURL)
	}
	if c.Username != "" {
		d["username"] = c.Username
	}
	return d
}

// cameraAdmin resolves the admin or writes 501.
func (s *Server) cameraAdmin(w http.ResponseWriter, r *http.Request) bool {
	if s.CameraAdmin == nil {
		s.writeError(w, r, &Error{Status: http.StatusNotImplemented, Message: "this server cannot change cameras"})
		return false
	}
	return true
}

// addCamera serves POST /api/cameras: a new camera, recording at once.
func (s *Server) addCamera(w http.ResponseWriter, r *http.Request) {
	if !s.cameraAdmin(w, r) {
		return
	}
	var req CameraRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := req.config()
	if err == nil {
		err = s.CameraAdmin.Add(r.Context(), c)
	}
	if err != nil {
		s.writeError(w, r, cameraError(err))
		return
	}
	s.audit(r, audit.CameraAdd, c.Name, cameraDetail(c))
	s.writeCamera(w, r, c.Name, http.StatusCreated)
}

// updateCamera serves PUT /api/cameras/{name}.
func (s *Server) updateCamera(w http.ResponseWriter, r *http.Request) {
	if !s.cameraAdmin(w, r) {
		return
	}
	var req CameraRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == "" {
		req.Name = r.PathValue("name")
	}
	if req.Name != r.PathValue("name") {
		s.writeError(w, r, &Error{Status: http.StatusBadRequest, Message: "a camera cannot be renamed (its recordings carry its name): add a new one"})
		return
	}
	c, err := req.config()
	if err == nil {
		err = s.CameraAdmin.Update(r.Context(), c)
	}
	if err != nil {
		s.writeError(w, r, cameraError(err))
		return
	}
	d := cameraDetail(c)
	if req.Password != "" {
		d["password"] = "changed"
	}
	s.audit(r, audit.CameraChange, c.Name, d)
	s.writeCamera(w, r, c.Name, http.StatusOK)
}

// removeCamera serves DELETE /api/cameras/{name}: recording stops, the
// recordings stay.
func (s *Server) removeCamera(w http.ResponseWriter, r *http.Request) {
	if !s.cameraAdmin(w, r) {
		return
	}
	name := r.PathValue("name")
	if err := s.CameraAdmin.Remove(r.Context(), name); err != nil {
		s.writeError(w, r, cameraError(err))
		return
	}
	s.audit(r, audit.CameraRemove, name, map[string]string{"recordings": "kept"})
	w.WriteHeader(http.StatusNoContent)
}

// writeCamera answers with the camera as GET /api/cameras shows it.
func (s *Server) writeCamera(w http.ResponseWriter, r *http.Request, name string, status int) {
	for _, cj := range s.cameraList(r) {
		if cj.Name == name {
			writeJSON(w, status, cj)
			return
		}
	}
	w.WriteHeader(status)
}
