package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits that keep the reader's memory and time bounded on hostile input.
const (
	maxInitBox       = 4 << 20  // ftyp or moov read into memory
	maxMoofBox       = 32 << 20 // moof read into memory (1<<20 samples of 16 bytes fit)
	maxFragments     = 1 << 20  // fragments per file
	maxSkippedBoxes  = 1 << 16  // free/skip/styp/... boxes tolerated between fragments
	maxInitPrefixBox = 64       // boxes before moov
)

// FileInfo is what ScanFile learns about a fragmented MP4 file.
type FileInfo struct {
	// Track is the video track: codec, the first parameter set of each kind
	// from avcC/hvcC, and the size from the sample entry.
	Track Track
	// TrackID is the video track's track_ID; Timescale its media timescale
	// (always 90000: ScanFile refuses others).
	TrackID   uint32
	Timescale uint32
	// InitEnd is the offset just past the moov box.
	InitEnd int64
	// Fragments are the complete moof+mdat pairs, in file order.
	Fragments []Fragment
	// ValidEnd is the end of the last complete fragment (InitEnd when there
	// is none). Bytes after it are a torn write or garbage and may be
	// truncated.
	ValidEnd int64

	trex sampleDefaults // the track's trex defaults
}

// Fragment locates and summarises one moof+mdat pair.
type Fragment struct {
	Offset int64 // start of the moof
	Size   int64 // from the moof start to the end of the mdat
	// MoofSize is the length of the moof box (zero in a Fragment built by
	// hand).
	MoofSize int64
	Seq      uint32
	// BaseDecodeTime90k is the tfdt baseMediaDecodeTime.
	BaseDecodeTime90k uint64
	// Dur90k is the sum of the sample durations.
	Dur90k    uint64
	Samples   int
	KeyFrames int
	// FirstKey reports whether the first sample is a sync sample.
	FirstKey bool

	// trackID and defaults come from the init segment; zero in a Fragment
	// built by hand, in which case ReadSamples takes the first traf and
	// zero trex defaults (enough for files AppendFragment wrote).
	trackID  uint32
	defaults sampleDefaults
}

// SampleInfo locates one sample of a fragment in the file.
type SampleInfo struct {
	Offset       int64 // absolute file offset of the sample data
	Size         uint32
	Dur90k       uint32
	CTSOffset90k int32
	Key          bool
}

// sampleDefaults are the trex (or tfhd) default duration, size and flags.
type sampleDefaults struct {
	dur, size, flags uint32
}

// errStop ends a scan at ValidEnd: torn or garbage bytes, not an error of
// the file as a whole.
var errStop = errors.New("mp4: end of valid data")

// boxHeader is a parsed box header.
type boxHeader struct {
	typ    uint32
	off    int64 // start of the box
	hdrLen int64 // 8 or 16
	size   int64 // whole box, header included
}

func (h boxHeader) end() int64 { return h.off + h.size }

// readBoxHeader reads the box header at off in a file of fileSize bytes. A
// header or box that runs past fileSize, or a size smaller than its header,
// is errStop. A size of 0 means the box extends to the end of the file.
func readBoxHeader(r io.ReaderAt, off, fileSize int64) (boxHeader, error) {
	var buf [16]byte
	h := boxHeader{off: off, hdrLen: 8}
	if fileSize-off < 8 {
		return h, errStop
	}
	if _, err := r.ReadAt(buf[:8], off); err != nil {
		return h, readErr(err)
	}
	size := int64(binary.BigEndian.Uint32(buf[:4]))
	h.typ = binary.BigEndian.Uint32(buf[4:8])
	switch size {
	case 0:
		size = fileSize - off
	case 1:
		if fileSize-off < 16 {
			return h, errStop
		}
		if _, err := r.ReadAt(buf[8:16], off+8); err != nil {
			return h, readErr(err)
		}
		h.hdrLen = 16
		large := binary.BigEndian.Uint64(buf[8:16])
		if large > uint64(fileSize-off) {
			return h, errStop
		}
		size = int64(large)
	}
	if size < h.hdrLen || size > fileSize-off {
		return h, errStop
	}
	h.size = size
	return h, nil
}

// readErr maps a short read at the end of the file to errStop and keeps
// other I/O errors.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errStop
	}
	return fmt.Errorf("mp4: read: %w", err)
}

// readBox reads the body of h, at most limit bytes.
func readBox(r io.ReaderAt, h boxHeader, limit int64) ([]byte, error) {
	n := h.size - h.hdrLen
	if n > limit {
		return nil, fmt.Errorf("mp4: %s box of %d bytes exceeds %d", fourCC(h.typ), n, limit)
	}
	body := make([]byte, n)
	if _, err := r.ReadAt(body, h.off+h.hdrLen); err != nil {
		return nil, readErr(err)
	}
	return body, nil
}

func fourCC(t uint32) string {
	b := []byte{byte(t >> 24), byte(t >> 16), byte(t >> 8), byte(t)}
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// ScanFile reads the fragmented MP4 file r of size bytes: its init segment
// (ftyp first, then moov, with at most a few free/skip/uuid boxes before
// moov) and then every moof+mdat pair, checking that each sample lies in
// the mdat that follows its moof. Between fragments, free, skip, styp, sidx,
// prft, emsg and uuid boxes are skipped. The scan stops without error at the
// first incomplete box, moof without a complete mdat, unparsable moof or
// other box, and reports the end of the last complete fragment as ValidEnd.
//
// It fails when the init segment is missing or unparsable (including a
// codec other than H.264/H.265 or a timescale other than 90000), when the
// file holds more than 1<<20 fragments, and on I/O errors other than a short
// read. It reads only box headers, the init and the moofs (never mdat
// payloads), allocates memory bounded by those caps, never panics, and is
// safe for concurrent use if r is.
func ScanFile(r io.ReaderAt, size int64) (*FileInfo, error) {
	return scanFile(r, size, nil)
}

// ScanFileSamples is ScanFile that also calls visit for every sample of
// every complete fragment, in file order, with the fragment's index in
// FileInfo.Fragments. Samples of a fragment are visited only once the whole
// fragment has parsed, so a torn last fragment visits nothing. When the
// file ends with a sample index (SampleIndexWriter) that agrees with its
// layout, the samples come from it in two reads, the fragments are not
// read, and their Seq and MoofSize are zero; otherwise it reads what
// ScanFile reads (the moofs carry the samples).
func ScanFileSamples(r io.ReaderAt, size int64, visit func(frag int, s SampleInfo)) (*FileInfo, error) {
	return scanFile(r, size, visit)
}

func scanFile(r io.ReaderAt, size int64, visit func(frag int, s SampleInfo)) (*FileInfo, error) {
	// Box headers and moofs are small and close together: one read of a
	// window usually covers a moof, its body and the next mdat header.
	r = &windowReader{r: r, size: size}
	if size < 0 {
		return nil, fmt.Errorf("mp4 scan: negative size %d", size)
	}
	info, err := scanInit(r, size)
	if err != nil {
		return nil, fmt.Errorf("mp4 scan: init segment: %w", err)
	}
	if visit != nil {
		// A closed segment carries its sample tables at the end.
		if readSampleIndex(r, size, info, visit) == nil {
			return info, nil
		}
	}
	off := info.InitEnd
	skipped := 0
	var pending []SampleInfo
	var collect func(SampleInfo)
	if visit != nil {
		collect = func(s SampleInfo) { pending = append(pending, s) }
	}
	for off < size {
		h, err := readBoxHeader(r, off, size)
		if err == errStop {
			break
		} else if err != nil {
			return nil, fmt.Errorf("mp4 scan: box at %d: %w", off, err)
		}
		switch h.typ {
		case typMoof:
		case typFree, typSkip, typStyp, typSidx, typPrft, typEmsg, typUUID:
			if skipped++; skipped > maxSkippedBoxes {
				return info, nil
			}
			off = h.end()
			info.ValidEnd = off // a complete box (e.g. Custos metadata) is valid data
			continue
		default:
			return info, nil
		}
		if len(info.Fragments) >= maxFragments {
			return nil, fmt.Errorf("mp4 scan: more than %d fragments", maxFragments)
		}
		pending = pending[:0]
		frag, err := scanFragment(r, h, size, info.TrackID, info.defaults(), collect)
		if err == errStop {
			break
		} else if err != nil {
			return nil, fmt.Errorf("mp4 scan: fragment at %d: %w", off, err)
		}
		for _, s := range pending {
			visit(len(info.Fragments), s)
		}
		info.Fragments = append(info.Fragments, frag)
		off = frag.Offset + frag.Size
		info.ValidEnd = off
	}
	return info, nil
}

// defaults returns the trex defaults kept by scanInit.
func (fi *FileInfo) defaults() sampleDefaults { return fi.trex }

// scanFragment reads the moof at h and the mdat after it and summarises
// them. Anything torn or malformed is errStop; only I/O errors are others.
func scanFragment(r io.ReaderAt, h boxHeader, fileSize int64, trackID uint32, def sampleDefaults, collect func(SampleInfo)) (Fragment, error) {
	f := Fragment{Offset: h.off, MoofSize: h.size, trackID: trackID, defaults: def}
	moof, mdat, err := readMoofMdat(r, h, fileSize)
	if err != nil {
		return f, err
	}
	f.Size = mdat.end() - h.off
	seq, base, err := parseMoof(moof, h.off, mdat, trackID, def, func(s SampleInfo) {
		if f.Samples == 0 {
			f.FirstKey = s.Key
		}
		f.Samples++
		if s.Key {
			f.KeyFrames++
		}
		f.Dur90k += uint64(s.Dur90k)
		if collect != nil {
			collect(s)
		}
	})
	if err != nil {
		return f, errStop
	}
	f.Seq, f.BaseDecodeTime90k = seq, base
	return f, nil
}

// readMoofMdat reads the body of the moof at h and the header of the mdat
// that must follow it. A moof too large to read is errStop.
func readMoofMdat(r io.ReaderAt, h boxHeader, fileSize int64) ([]byte, boxHeader, error) {
	mdat, err := readBoxHeader(r, h.end(), fileSize)
	if err != nil {
		return nil, mdat, err
	}
	if mdat.typ != typMdat || h.size-h.hdrLen > maxMoofBox {
		return nil, mdat, errStop
	}
	moof, err := readBox(r, h, maxMoofBox)
	return moof, mdat, err
}

// ReadSamples returns the location, duration, composition offset and
// key flag of every sample of frag, a Fragment from ScanFile (or one with
// only Offset and Size set, taken from an index: then the first traf is
// read and trex defaults are taken as zero, which suits files written by
// AppendFragment). It reads the moof and the mdat header through r, does not
// read sample data, and is safe for concurrent use if r is. It fails when
// the bytes at frag.Offset are not a moof followed by an mdat ending at
// frag.Offset+frag.Size, or when the moof is malformed.
func ReadSamples(r io.ReaderAt, frag Fragment) ([]SampleInfo, error) {
	end := frag.Offset + frag.Size
	if frag.Offset < 0 || frag.Size <= 0 || end < frag.Offset {
		return nil, fmt.Errorf("mp4: fragment at %d: bad size %d", frag.Offset, frag.Size)
	}
	h, err := readBoxHeader(r, frag.Offset, end)
	if err == nil && h.typ != typMoof {
		err = fmt.Errorf("box is %q, not moof", fourCC(h.typ))
	}
	var moof []byte
	var mdat boxHeader
	if err == nil {
		moof, mdat, err = readMoofMdat(r, h, end)
	}
	if err == nil && mdat.end() != end {
		err = fmt.Errorf("mdat ends at %d, not %d", mdat.end(), end)
	}
	if err != nil {
		if err == errStop {
			err = errors.New("moof and mdat incomplete or malformed")
		}
		return nil, fmt.Errorf("mp4: fragment at %d: %w", frag.Offset, err)
	}
	var out []SampleInfo
	_, _, err = parseMoof(moof, h.off, mdat, frag.trackID, frag.defaults, func(s SampleInfo) {
		out = append(out, s)
	})
	if err != nil {
		return nil, fmt.Errorf("mp4: fragment at %d: %w", frag.Offset, err)
	}
	return out, nil
}

// childBox is one box found by forBoxes.
type childBox struct {
	typ  uint32
	box  []byte // the whole box, header included
	body []byte // the box after its header
}

// forBoxes calls fn for each box in b, in order. It fails on a box whose
// header is truncated or whose size is below its header or beyond b; a
// size of 0 extends to the end of b.
func forBoxes(b []byte, fn func(c childBox) error) error {
	for len(b) > 0 {
		if len(b) < 8 {
			return errors.New("truncated box header")
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := binary.BigEndian.Uint32(b[4:])
		hdr := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return errors.New("truncated box header")
			}
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hdr || size > uint64(len(b)) {
			return fmt.Errorf("%s box size %d out of range", fourCC(typ), size)
		}
		if err := fn(childBox{typ: typ, box: b[:size], body: b[hdr:size]}); err != nil {
			return err
		}
		b = b[size:]
	}
	return nil
}

// walk calls fn with the type and body of each child box in b (forBoxes).
func walk(b []byte, fn func(typ uint32, body []byte) error) error {
	return forBoxes(b, func(c childBox) error { return fn(c.typ, c.body) })
}

// parseMoof walks a moof body (the moof starting at file offset moofOff,
// followed by the mdat box mdat), calls visit for every sample of track
// trackID (the first traf when trackID is 0) and returns the sequence
// number and base decode time. Every sample must lie inside the mdat's
// payload; there must be a traf for the track with a tfdt, and at most
// maxSamples samples.
func parseMoof(moof []byte, moofOff int64, mdat boxHeader, trackID uint32, def sampleDefaults, visit func(SampleInfo)) (seq uint32, base uint64, err error) {
	found, haveSeq := false, false
	err = walk(moof, func(typ uint32, body []byte) error {
		switch typ {
		case typMfhd:
			if len(body) < 8 {
				return errors.New("short mfhd")
			}
			seq, haveSeq = binary.BigEndian.Uint32(body[4:]), true
		case typTraf:
			if found {
				return nil
			}
			var ok bool
			var err error
			ok, base, err = parseTraf(body, moofOff, mdat, trackID, def, visit)
			found = ok
			return err
		}
		return nil
	})
	if err == nil && (!found || !haveSeq) {
		err = errors.New("moof without mfhd or traf for the track")
	}
	return seq, base, err
}

// parseTraf parses one traf; ok is false (and nothing visited) when it
// belongs to another track.
func parseTraf(traf []byte, moofOff int64, mdat boxHeader, trackID uint32, def sampleDefaults, visit func(SampleInfo)) (ok bool, base uint64, err error) {
	// The tfhd and tfdt come before the truns; find them first.
	var tfhd, tfdt []byte
	if err := walk(traf, func(typ uint32, body []byte) error {
		switch typ {
		case typTfhd:
			tfhd = body
		case typTfdt:
			tfdt = body
		}
		return nil
	}); err != nil {
		return false, 0, err
	}
	if len(tfhd) < 8 {
		return false, 0, errors.New("traf without tfhd")
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	if id := binary.BigEndian.Uint32(tfhd[4:]); trackID != 0 && id != trackID {
		return false, 0, nil
	}
	p := tfhd[8:]
	dataBase := moofOff
	take := func(n int) ([]byte, bool) {
		if len(p) < n {
			return nil, false
		}
		v := p[:n]
		p = p[n:]
		return v, true
	}
	if flags&tfhdBaseDataOffset != 0 {
		v, okv := take(8)
		if !okv {
			return false, 0, errors.New("short tfhd")
		}
		bo := binary.BigEndian.Uint64(v)
		if bo > uint64(mdat.end()) {
			return false, 0, errors.New("tfhd base_data_offset past the mdat")
		}
		dataBase = int64(bo)
	}
	if flags&tfhdSampleDescIndex != 0 {
		if _, okv := take(4); !okv {
			return false, 0, errors.New("short tfhd")
		}
	}
	for _, f := range []struct {
		bit uint32
		dst *uint32
	}{{tfhdDefaultDuration, &def.dur}, {tfhdDefaultSize, &def.size}, {tfhdDefaultFlags, &def.flags}} {
		if flags&f.bit != 0 {
			v, okv := take(4)
			if !okv {
				return false, 0, errors.New("short tfhd")
			}
			*f.dst = binary.BigEndian.Uint32(v)
		}
	}
	switch {
	case len(tfdt) >= 12 && tfdt[0] == 1:
		base = binary.BigEndian.Uint64(tfdt[4:])
	case len(tfdt) >= 8 && tfdt[0] == 0:
		base = uint64(binary.BigEndian.Uint32(tfdt[4:]))
	default:
		return false, 0, errors.New("traf without a valid tfdt")
	}

	lo, hi := mdat.off+mdat.hdrLen, mdat.end()
	t := trunState{pos: dataBase, base: dataBase, first: true, def: def,
		lo: lo, hi: hi, budget: hi - lo + int64(len(traf)), visit: visit}
	err = walk(traf, func(typ uint32, body []byte) error {
		if typ != typTrun {
			return nil
		}
		return t.parse(body)
	})
	return true, base, err
}

// trunState carries sample position and count across the truns of a traf.
type trunState struct {
	pos, base int64 // next sample's file offset; traf base data offset
	lo, hi    int64 // mdat payload range
	first     bool  // next trun is the traf's first
	count     int
	budget    int64 // samples still allowed: one per byte of traf and mdat payload
	def       sampleDefaults
	visit     func(SampleInfo)
}

// parse reads one trun (14496-12 8.8.8) and visits its samples.
func (t *trunState) parse(b []byte) error {
	if len(b) < 8 {
		return errors.New("short trun")
	}
	version := b[0]
	flags := binary.BigEndian.Uint32(b) & 0xffffff
	n := binary.BigEndian.Uint32(b[4:])
	b = b[8:]
	if flags&trunDataOffset != 0 {
		if len(b) < 4 {
			return errors.New("short trun")
		}
		t.pos = t.base + int64(int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
	} else if t.first {
		t.pos = t.base
	}
	t.first = false
	firstFlags, haveFirst := uint32(0), false
	if flags&trunFirstSampleFlags != 0 {
		if len(b) < 4 {
			return errors.New("short trun")
		}
		firstFlags, haveFirst = binary.BigEndian.Uint32(b), true
		b = b[4:]
	}
	per := 0
	for _, bit := range []uint32{trunDuration, trunSize, trunFlags, trunCTSOffset} {
		if flags&bit != 0 {
			per += 4
		}
	}
	if uint64(n) > uint64(maxSamples-t.count) {
		return fmt.Errorf("more than %d samples", maxSamples)
	}
	if uint64(n)*uint64(per) > uint64(len(b)) {
		return errors.New("trun sample table runs past the box")
	}
	if int64(n) > t.budget {
		return errors.New("more samples than bytes to hold them")
	}
	t.count += int(n)
	t.budget -= int64(n)
	for i := uint32(0); i < n; i++ {
		s := SampleInfo{Offset: t.pos, Dur90k: t.def.dur, Size: t.def.size}
		sflags := t.def.flags
		if flags&trunDuration != 0 {
			s.Dur90k = binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		if flags&trunSize != 0 {
			s.Size = binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		if flags&trunFlags != 0 {
			sflags = binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		if i == 0 && haveFirst {
			sflags = firstFlags
		}
		if flags&trunCTSOffset != 0 {
			v := binary.BigEndian.Uint32(b)
			b = b[4:]
			if version == 0 && v > 1<<31-1 {
				return errors.New("unsigned composition offset out of range")
			}
			s.CTSOffset90k = int32(v)
		}
		s.Key = sflags&flagNonSync == 0
		if s.Offset < t.lo || int64(s.Size) > t.hi-s.Offset {
			return fmt.Errorf("sample %d at %d+%d outside mdat [%d,%d)", i, s.Offset, s.Size, t.lo, t.hi)
		}
		t.pos += int64(s.Size)
		t.visit(s)
	}
	return nil
}

// scanWindow is how much windowReader reads at once.
const scanWindow = 8 << 10

// windowReader serves small reads from one cached window of the file, so
// that a scan costs about one read system call per fragment instead of
// three. Not safe for concurrent use (each scan has its own).
type windowReader struct {
	r    io.ReaderAt
	size int64
	buf  []byte
	off  int64 // file offset of buf[0]
}

func (w *windowReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= w.off && off+int64(len(p)) <= w.off+int64(len(w.buf)) {
		return copy(p, w.buf[off-w.off:]), nil
	}
	if len(p) > scanWindow/2 || off < 0 || off >= w.size {
		return w.r.ReadAt(p, off)
	}
	if cap(w.buf) < scanWindow {
		w.buf = make([]byte, scanWindow)
	}
	n := int(min(int64(scanWindow), w.size-off))
	m, err := w.r.ReadAt(w.buf[:n], off)
	w.buf, w.off = w.buf[:m], off
	if m < len(p) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return copy(p, w.buf), err
	}
	return copy(p, w.buf), nil
}
