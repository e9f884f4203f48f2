// Package cameras runs the cameras a server records: for each, one
// recorder supervisor and one live-view hub per stream. Cameras come from
// the configuration file (fixed while the server runs) and from the
// index (added, changed and removed through the API while it runs).
package cameras

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
	"github.com/custos-nvr/custos/internal/config"
	"github.com/custos-nvr/custos/internal/live"
	"github.com/custos-nvr/custos/internal/recorder"
	"github.com/custos-nvr/custos/internal/retention"
	"github.com/custos-nvr/custos/internal/rtsp"
	"github.com/custos-nvr/custos/internal/secret"
	"github.com/custos-nvr/custos/internal/store"
)

// Where a camera is defined.
const (
	SourceConfig = "config" // the configuration file: edit it and restart
	SourceAPI    = "api"    // the index: managed through the API
)

// Errors of Add, Update and Remove (wrapped), for the API's statuses.
var (
	ErrExists   = errors.New("a camera with this name exists")
	ErrNotFound = errors.New("no such camera")
	// ErrReadOnly: cameras of the configuration file change there.
	ErrReadOnly = errors.New("the camera is defined in the configuration file: change it there and restart")
	// ErrPasswordNeeded: a change of host or port must come with the
	// camera's password, which is never sent to a host:port it was not
	// set for.
	ErrPasswordNeeded = errors.New("type the camera's password again: a stored password is only sent to the host and port it was set for")
)

// Store keeps the cameras added through the API (sqlite.Store).
type Store interface {
	StoredCameras(ctx context.Context) ([]config.Camera, error)
	PutCamera(ctx context.Context, c config.Camera) error
	DeleteCamera(ctx context.Context, name string) error
}

// Options are what a Manager needs. Safe to share; not modified.
type Options struct {
	// Config gives defaults, storage names and the fsync interval.
	Config *config.Config
	Index  store.Store
	Store  Store
	// Disks are the usable storage directories, DiskErr why the others
	// are not (their cameras report it instead of recording).
	Disks   map[string]blob.Store
	DiskErr map[string]error
	Logger  *slog.Logger
	// OnWriteError is called by recorders when a write fails (a full
	// disk), to run retention at once.
	OnWriteError func(error)
	// Chain keeps the streams' hash chains (nil: none).
	Chain recorder.ChainRecorder
	// Secrets seals the URLs and password of cameras before they are
	// stored and opens them when read (required).
	Secrets *secret.Box
}

// Camera is a running camera. The slices are not modified after the
// camera starts; Spec holds its password (never show it).
type Camera struct {
	Spec    config.Camera
	Source  string
	Streams []*recorder.Supervisor // main, then sub when configured
	Live    []*live.Hub            // same order

	cancel context.CancelFunc
	done   chan struct{} // closed when every supervisor has returned
}

// Manager runs the cameras. Its methods are safe for concurrent use.
type Manager struct {
	o   Options
	ctx context.Context

	mu   sync.RWMutex // guards cams; ops serialises changes
	ops  sync.Mutex
	cams []*Camera // in display order: configuration, then API by name
}

// Start starts every camera of the configuration and of the store; they
// record until ctx ends or Close. It fails only when the store cannot be
// read or a camera cannot be set up.
func Start(ctx context.Context, o Options) (*Manager, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{o: o, ctx: ctx}
	for _, c := range o.Config.Cameras {
		if err := m.start(c, SourceConfig); err != nil {
			m.Close()
			return nil, err
		}
	}
	if o.Secrets == nil {
		m.Close()
		return nil, errors.New("cameras: a secret box is required to read stored cameras")
	}
	stored, err := o.Store.StoredCameras(ctx)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("cameras: %w", err)
	}
	if err := m.sealPlaintext(ctx, stored); err != nil {
		m.Close()
		return nil, err
	}
	for i, c := range stored {
		if _, ok := m.Get(c.Name); ok {
			o.Logger.Warn("cameras: a camera added in the UI has the name of one in the configuration file; the file's wins",
				"camera", c.Name)
			continue
		}
		c, err := m.unseal(c)
		if err != nil {
			// The key file is not the one it was sealed with: say so on
			// the camera, record the others.
			o.Logger.Error("cameras: stored camera cannot be started", "camera", c.Name, "err", err)
			if err := m.startBroken(c, err); err != nil {
				m.Close()
				return nil, err
			}
			continue
		}
		o.Config.CameraDefaults(&c, len(o.Config.Cameras)+i)
		if err := o.Config.ValidateCamera(c, "camera "+c.Name); err != nil {
			// A storage removed from the file since: say so, keep the rest.
			o.Logger.Error("cameras: stored camera is invalid and not started", "camera", c.Name, "err", err)
			continue
		}
		if err := m.start(c, SourceAPI); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// startBroken lists a stored camera whose secrets cannot be opened: its
// main stream reports why instead of recording.
func (m *Manager) startBroken(spec config.Camera, why error) error {
	cam := &Camera{Spec: spec, Source: SourceAPI, cancel: func() {}, done: make(chan struct{})}
	close(cam.done)
	sup, err := recorder.NewSupervisor(recorder.StreamConfig{Camera: spec.Name, Stream: "main", Index: m.o.Index,
		Logger: m.o.Logger}, &recorder.SetupError{Err: why})
	if err != nil {
		return fmt.Errorf("camera %s: %w", spec.Name, err)
	}
	cam.Streams = []*recorder.Supervisor{sup}
	m.mu.Lock()
	m.cams = append(m.cams, cam)
	m.sortLocked()
	m.mu.Unlock()
	return nil
}

// start builds and runs a camera's streams and adds it to the list.
func (m *Manager) start(spec config.Camera, source string) error {
	ctx, cancel := context.WithCancel(m.ctx)
	cam := &Camera{Spec: spec, Source: source, cancel: cancel, done: make(chan struct{})}
	urls := []struct{ stream, url string }{{"main", spec.URL}}
	if spec.SubURL != "" {
		urls = append(urls, struct{ stream, url string }{"sub", spec.SubURL})
	}
	for _, u := range urls {
		hub := live.NewHub(live.HubOptions{Camera: spec.Name, Stream: u.stream, Logger: m.o.Logger})
		sc := recorder.StreamConfig{
			Camera: spec.Name, Stream: u.stream,
			Client: rtsp.ClientConfig{URL: u.url, Username: spec.Username, Password: spec.Password,
				Transport: rtsp.TransportMode(spec.Transport), AllowBasic: spec.AllowBasicAuth},
			Disk: m.o.Disks[spec.Storage], Index: m.o.Index, FsyncEvery: time.Duration(m.o.Config.FsyncInterval),
			Logger: m.o.Logger, OnWriteError: m.o.OnWriteError, Live: hub, Chain: m.o.Chain,
		}
		sup, err := recorder.NewSupervisor(sc, m.o.DiskErr[spec.Storage])
		if err != nil {
			cancel()
			for _, h := range cam.Live {
				h.Close()
			}
			hub.Close()
			return fmt.Errorf("camera %s: %w", spec.Name, err)
		}
		cam.Streams = append(cam.Streams, sup)
		cam.Live = append(cam.Live, hub)
	}
	var wg sync.WaitGroup
	for _, sup := range cam.Streams {
		wg.Go(func() { sup.Run(ctx) })
	}
	go func() {
		wg.Wait()
		close(cam.done)
	}()
	m.mu.Lock()
	m.cams = append(m.cams, cam)
	m.sortLocked()
	m.mu.Unlock()
	return nil
}

func (m *Manager) sortLocked() {
	slices.SortStableFunc(m.cams, func(a, b *Camera) int {
		if a.Source != b.Source {
			if a.Source == SourceConfig {
				return -1
			}
			return 1
		}
		if a.Source == SourceAPI {
			return cmpString(a.Spec.Name, b.Spec.Name)
		}
		return 0
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stop ends a camera's recording (its open segments are closed) and its
// live viewers, and waits.
func (c *Camera) stop() {
	c.cancel()
	<-c.done
	for _, h := range c.Live {
		h.Close()
	}
}

// List returns the running cameras in display order.
func (m *Manager) List() []*Camera {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.cams)
}

// Get returns a running camera by name.
func (m *Manager) Get(name string) (*Camera, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, c := range m.cams {
		if c.Spec.Name == name {
			return c, true
		}
	}
	return nil, false
}

// StripCredentials returns an RTSP URL without its user information and
// with the values of credential query parameters redacted
// (rtsp.RedactURL), for display; a string that does not parse is
// returned redacted.
func StripCredentials(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return rtsp.RedactURL(raw)
	}
	u.User = nil
	return rtsp.RedactURL(u.String())
}

// moveCredentials moves the main URL's user name and password into the
// camera's fields (when those are empty, or the password alone when the
// user names agree), so that stored URLs carry none.
func moveCredentials(c *config.Camera) {
	u, err := url.Parse(c.URL)
	if err != nil || u.User == nil {
		return
	}
	if c.Username == "" || c.Password == "" && u.User.Username() == c.Username {
		c.Username = u.User.Username()
		c.Password, _ = u.User.Password()
	}
	u.User = nil
	c.URL = u.String()
}

// endpoint is an RTSP URL's host:port, lower case, with RTSP's default
// port 554 filled in; "" when raw does not parse or has no host.
func endpoint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "554"
	}
	return strings.ToLower(net.JoinHostPort(u.Hostname(), port))
}

// checkEndpoints refuses, with ErrPasswordNeeded, a change that would send
// old's stored password to a host:port none of old's URLs named.
func checkEndpoints(old config.Camera, c config.Camera) error {
	if old.Password == "" {
		return nil
	}
	known := map[string]bool{endpoint(old.URL): true}
	if old.SubURL != "" {
		known[endpoint(old.SubURL)] = true
	}
	for _, u := range []struct{ key, url string }{{"url", c.URL}, {"sub_url", c.SubURL}} {
		if u.url == "" {
			continue
		}
		if ep := endpoint(u.url); ep == "" || !known[ep] {
			return fmt.Errorf("camera %q: %s now points at %s, not at %s: %w", c.Name, u.key,
				cmp.Or(ep, "another host"), endpoint(old.URL), ErrPasswordNeeded)
		}
	}
	return nil
}

// ProbeCredentials returns what a probe of rawURL on behalf of camera
// name may use: the stored URL when rawURL is how the API shows one of
// the camera's URLs (StripCredentials), and the stored user name and
// password, but only when rawURL names a host:port of the camera's URLs.
// Errors: ErrNotFound, ErrPasswordNeeded (another host: the stored
// password is not sent there). No I/O.
func (m *Manager) ProbeCredentials(name, rawURL string) (probeURL, user, pass string, err error) {
	c, ok := m.Get(name)
	if !ok {
		return "", "", "", fmt.Errorf("camera %q: %w", name, ErrNotFound)
	}
	sp := c.Spec
	for _, u := range []string{sp.URL, sp.SubURL} {
		if u != "" && rawURL == StripCredentials(u) {
			rawURL = u
		}
	}
	probe := config.Camera{Name: name, URL: rawURL}
	if err := checkEndpoints(sp, probe); err != nil {
		return "", "", "", err
	}
	return rawURL, sp.Username, sp.Password, nil
}

// prepare fills defaults and validates a camera from the API.
func (m *Manager) prepare(c *config.Camera) error {
	m.o.Config.CameraDefaults(c, len(m.List()))
	return m.o.Config.ValidateCamera(*c, "camera")
}

// Add validates, stores and starts a new camera. Errors: *config.Error
// for a bad field, ErrExists, or the store's.
func (m *Manager) Add(ctx context.Context, c config.Camera) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	if _, ok := m.Get(c.Name); ok {
		return fmt.Errorf("camera %q: %w", c.Name, ErrExists)
	}
	moveCredentials(&c)
	raw := c
	if err := m.prepare(&c); err != nil {
		return err
	}
	if err := m.o.Store.PutCamera(ctx, m.seal(raw)); err != nil {
		return err
	}
	return m.start(c, SourceAPI)
}

// Update replaces an API camera's settings; an empty Password keeps the
// stored one, but only when every URL still names a host:port the camera
// had (else ErrPasswordNeeded: the password is never carried to another
// host). Streams restart only when what they connect to changed;
// retention changes apply at the next retention pass. Errors: *config.Error,
// ErrNotFound, ErrReadOnly, ErrPasswordNeeded, or the store's.
func (m *Manager) Update(ctx context.Context, c config.Camera) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	old, ok := m.Get(c.Name)
	if !ok {
		return fmt.Errorf("camera %q: %w", c.Name, ErrNotFound)
	}
	if old.Source != SourceAPI {
		return fmt.Errorf("camera %q: %w", c.Name, ErrReadOnly)
	}
	// What the API showed comes back: URLs without their credentials
	// (StripCredentials) and no password. Keep the stored ones then.
	if c.URL == StripCredentials(old.Spec.URL) {
		c.URL = old.Spec.URL
	}
	if c.SubURL == StripCredentials(old.Spec.SubURL) {
		c.SubURL = old.Spec.SubURL
	}
	moveCredentials(&c)
	if c.Password == "" && c.Username == old.Spec.Username {
		if err := checkEndpoints(old.Spec, c); err != nil {
			return err
		}
		c.Password = old.Spec.Password
	}
	raw := c
	if err := m.prepare(&c); err != nil {
		return err
	}
	if err := m.o.Store.PutCamera(ctx, m.seal(raw)); err != nil {
		return err
	}
	s := old.Spec
	if s.URL == c.URL && s.SubURL == c.SubURL && s.Username == c.Username && s.Password == c.Password &&
		s.Transport == c.Transport && s.Storage == c.Storage && s.AllowBasicAuth == c.AllowBasicAuth {
		// Only retention changed: swap the spec, keep recording.
		m.mu.Lock()
		nc := *old
		nc.Spec = c
		for i, x := range m.cams {
			if x == old {
				m.cams[i] = &nc
			}
		}
		m.mu.Unlock()
		return nil
	}
	m.remove(old)
	return m.start(c, SourceAPI)
}

// Remove stops an API camera and deletes its definition; its recordings
// stay (under the configuration's default retention). Errors:
// ErrNotFound, ErrReadOnly, or the store's.
func (m *Manager) Remove(ctx context.Context, name string) error {
	m.ops.Lock()
	defer m.ops.Unlock()
	c, ok := m.Get(name)
	if !ok {
		return fmt.Errorf("camera %q: %w", name, ErrNotFound)
	}
	if c.Source != SourceAPI {
		return fmt.Errorf("camera %q: %w", name, ErrReadOnly)
	}
	if err := m.o.Store.DeleteCamera(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m.remove(c)
	return nil
}

// remove takes c out of the list, then stops it.
func (m *Manager) remove(c *Camera) {
	m.mu.Lock()
	m.cams = slices.DeleteFunc(m.cams, func(x *Camera) bool { return x == c })
	m.mu.Unlock()
	c.stop()
}

// Policies returns the retention policy of every running camera.
func (m *Manager) Policies() []retention.Policy {
	var out []retention.Policy
	for _, c := range m.List() {
		out = append(out, retention.Policy{Camera: c.Spec.Name,
			MaxAge: time.Duration(c.Spec.Retention.MaxAge), MaxBytes: int64(c.Spec.Retention.MaxBytes)})
	}
	return out
}

// Close stops every camera and waits (open segments are closed).
func (m *Manager) Close() {
	m.ops.Lock()
	defer m.ops.Unlock()
	m.mu.Lock()
	cams := m.cams
	m.cams = nil
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cams {
		wg.Go(c.stop)
	}
	wg.Wait()
}
