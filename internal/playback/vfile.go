package playback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/custos-nvr/custos/internal/blob"
)

// part is one piece of a virtual file: bytes held in memory, or a range of
// a stored segment file.
type part struct {
	outOff int64  // offset in the virtual file
	mem    []byte // when non-nil, the bytes themselves
	disk   string
	key    string
	off, n int64 // file range when mem is nil
	// from and to are the wall-clock span of the video in a stored
	// range added by addVideo (zero otherwise).
	from, to time.Time
}

func (p *part) size() int64 {
	if p.mem != nil {
		return int64(len(p.mem))
	}
	return p.n
}

// File is a virtual file: an MP4 assembled from generated headers and
// ranges of stored segment files, never materialised. Its metadata is
// immutable; read it with Open. Safe for concurrent use.
type File struct {
	// Name is a suggested file name (for Content-Disposition).
	Name string
	// ContentType is the MIME type of the bytes.
	ContentType string
	// From and To are the wall-clock range the file covers.
	From, To time.Time
	// ETag is a strong entity tag (quoted): equal tags mean equal bytes.
	ETag string
	// ModTime is the newest segment start in the file (Last-Modified).
	ModTime time.Time
	// Evidence, for an evidence export, says what it covers.
	Evidence *EvidenceInfo

	size  int64
	parts []part
	disks map[string]blob.Store
}

// Size returns the length of the file in bytes.
func (f *File) Size() int64 { return f.size }

// add appends a part.
func (f *File) addMem(b []byte) {
	if len(b) == 0 {
		return
	}
	f.parts = append(f.parts, part{outOff: f.size, mem: b})
	f.size += int64(len(b))
}

func (f *File) addRange(disk, key string, off, n int64) {
	if n <= 0 {
		return
	}
	if l := len(f.parts); l > 0 {
		if p := &f.parts[l-1]; p.mem == nil && p.disk == disk && p.key == key && p.off+p.n == off {
			p.n += n
			f.size += n
			return
		}
	}
	f.parts = append(f.parts, part{outOff: f.size, disk: disk, key: key, off: off, n: n})
	f.size += n
}

// addVideo is addRange for the bytes of samples covering [from, to) of
// wall time; Spans maps byte ranges back to these times.
func (f *File) addVideo(disk, key string, off, n int64, from, to time.Time) {
	if n <= 0 {
		return
	}
	if l := len(f.parts); l > 0 {
		if p := &f.parts[l-1]; p.mem == nil && p.disk == disk && p.key == key && p.off+p.n == off && !p.to.IsZero() && p.to.Equal(from) {
			p.n += n
			p.to = to
			f.size += n
			return
		}
	}
	f.parts = append(f.parts, part{outOff: f.size, disk: disk, key: key, off: off, n: n, from: from, to: to})
	f.size += n
}

// Span is a wall-clock interval [From, To).
type Span struct{ From, To time.Time }

// spanSlack is how far apart two spans may be and still be one: the
// rounding of media to wall time between abutting segments of a run.
const spanSlack = time.Millisecond

// Spans returns the wall-clock spans of the video in bytes [off, end) of
// the file, sorted and merged, clipped to [From, To]. A file whose bytes
// carry no times (init segments, evidence exports) reports [From, To)
// when the range holds any stored byte (nothing when To is not after
// From: an init segment holds no video). No I/O; safe for concurrent use.
func (f *File) Spans(off, end int64) []Span {
	var out []Span
	timed := false
	stored := false
	i := sort.Search(len(f.parts), func(i int) bool { return f.parts[i].outOff+f.parts[i].size() > off })
	for ; i < len(f.parts) && f.parts[i].outOff < end; i++ {
		pt := &f.parts[i]
		if pt.mem != nil {
			continue
		}
		stored = true
		if pt.to.IsZero() {
			continue
		}
		timed = true
		a, b := pt.from, pt.to
		if !f.From.IsZero() {
			a, b = maxTime(a, f.From), minTime(b, f.To)
		}
		if b.Before(a) {
			continue
		}
		if l := len(out); l > 0 && !a.After(out[l-1].To.Add(spanSlack)) {
			out[l-1].To = maxTime(out[l-1].To, b)
			continue
		}
		out = append(out, Span{From: a, To: b})
	}
	if !timed && stored && f.To.After(f.From) {
		out = append(out, Span{From: f.From, To: f.To})
	}
	return out
}

// Open returns a reader of the file's bytes. Stored files are opened as
// the reader reaches them and closed by Close. Reads fail with a wrapped
// ErrMissingFile when a segment file vanished (retention deleted it) or
// shrank since the file was planned.
func (f *File) Open(ctx context.Context) *Reader {
	return &Reader{f: f, ctx: ctx, open: map[string]blob.Reader{}}
}

// Reader reads a File. It implements io.ReadSeeker (for http.ServeContent)
// and io.ReaderAt. Not safe for concurrent use.
type Reader struct {
	f    *File
	ctx  context.Context
	pos  int64
	open map[string]blob.Reader // by disk + "\x00" + key
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.f.size
	default:
		return r.pos, errors.New("playback: bad whence")
	}
	if offset < 0 {
		return r.pos, errors.New("playback: seek before start")
	}
	r.pos = offset
	return offset, nil
}

// ReadAt implements io.ReaderAt.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.f.size {
		return 0, io.EOF
	}
	parts := r.f.parts
	i := sort.Search(len(parts), func(i int) bool { return parts[i].outOff+parts[i].size() > off })
	n := 0
	for ; i < len(parts) && n < len(p); i++ {
		pt := &parts[i]
		in := off + int64(n) - pt.outOff
		want := min(int64(len(p)-n), pt.size()-in)
		dst := p[n : n+int(want)]
		if pt.mem != nil {
			copy(dst, pt.mem[in:])
		} else if err := r.readFile(pt, dst, pt.off+in); err != nil {
			return n, err
		}
		n += int(want)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *Reader) readFile(pt *part, dst []byte, off int64) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	br, err := r.blob(pt)
	if err != nil {
		return err
	}
	m, err := br.ReadAt(dst, off)
	if m < len(dst) {
		if err == nil || errors.Is(err, io.EOF) {
			return fmt.Errorf("%s on %s is shorter than planned: %w", pt.key, pt.disk, ErrMissingFile)
		}
		return fmt.Errorf("read %s on %s: %w", pt.key, pt.disk, err)
	}
	return nil
}

// blob returns the open reader of part pt's file, opening it on first use.
func (r *Reader) blob(pt *part) (blob.Reader, error) {
	k := pt.disk + "\x00" + pt.key
	if br := r.open[k]; br != nil {
		return br, nil
	}
	disk := r.f.disks[pt.disk]
	if disk == nil {
		return nil, fmt.Errorf("%w: disk %q is not configured", ErrMissingFile, pt.disk)
	}
	br, err := disk.Open(r.ctx, pt.key)
	if err != nil {
		if errors.Is(err, blob.ErrNotExist) || errors.Is(err, blob.ErrUnavailable) {
			return nil, fmt.Errorf("%s on %s: %w: %w", pt.key, pt.disk, ErrMissingFile, err)
		}
		return nil, fmt.Errorf("open %s on %s: %w", pt.key, pt.disk, err)
	}
	// Keep a handful open: a long export walks through many files.
	if len(r.open) >= 8 {
		r.closeAll()
	}
	r.open[k] = br
	return br, nil
}

func (r *Reader) closeAll() {
	for k, br := range r.open {
		br.Close()
		delete(r.open, k)
	}
}

// Close closes the stored files the reader opened.
func (r *Reader) Close() error {
	r.closeAll()
	return nil
}

// Send writes the rest of the file to w. Stored bytes on a blob store
// backed by files go through io.CopyN from the *os.File, so an
// http.ResponseWriter (through its connection's ReadFrom) sends them with
// sendfile, without copying them through user space. It is the fast path
// for whole-file responses; it moves the read position to the end.
func (r *Reader) Send(w io.Writer) (int64, error) {
	var total int64
	parts := r.f.parts
	i := sort.Search(len(parts), func(i int) bool { return parts[i].outOff+parts[i].size() > r.pos })
	for ; i < len(parts); i++ {
		pt := &parts[i]
		in := r.pos - pt.outOff
		var n int64
		var err error
		if pt.mem != nil {
			var m int
			m, err = w.Write(pt.mem[in:])
			n = int64(m)
		} else {
			n, err = r.sendFile(w, pt, in)
		}
		total += n
		r.pos += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// sendFile copies part pt from offset in of the part to w.
func (r *Reader) sendFile(w io.Writer, pt *part, in int64) (int64, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	br, err := r.blob(pt)
	if err != nil {
		return 0, err
	}
	fr, ok := br.(blob.FileReader)
	if !ok {
		return io.Copy(w, io.NewSectionReader(br, pt.off+in, pt.n-in))
	}
	f := fr.File()
	if _, err := f.Seek(pt.off+in, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s on %s: %w", pt.key, pt.disk, err)
	}
	n, err := io.CopyN(w, f, pt.n-in)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%s on %s is shorter than planned: %w", pt.key, pt.disk, ErrMissingFile)
	}
	return n, err
}

// WriteTo implements io.WriterTo: it copies the rest of the file with one
// buffer per call, the fast path for io.Copy of a whole export.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for r.pos < r.f.size {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return total, err
		}
	}
	return total, nil
}
