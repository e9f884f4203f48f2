package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// MovieSample is one sample of a progressive movie, in decode order.
type MovieSample struct {
	// Dur90k is the decode duration: the next sample's decode time minus
	// this one's.
	Dur90k uint32
	// Size is the byte length of the sample's data in the mdat.
	Size uint32
	// CTSOffset90k is presentation time minus decode time; it may be
	// negative (ctts version 1).
	CTSOffset90k int32
	// Key marks a sync sample.
	Key bool
	// Entry is the index into Movie.Entries of the sample's description
	// (the stsc sample_description_index minus 1).
	Entry int
}

// Movie describes a progressive (non-fragmented, moov before mdat) MP4 with
// one video track, timescale 90000 for both movie and media.
type Movie struct {
	// Entries are the sample entry boxes (from SampleEntry) that go into
	// stsd, in order; at least one. The first one's type (avc1/avc3 or
	// hvc1/hev1) chooses the ftyp brand.
	Entries [][]byte
	// Width and Height are the tkhd presentation size, 0..65535.
	Width, Height int
	// Samples are the track's samples in decode order: at least one, at
	// most 1<<26.
	Samples []MovieSample
	// Chunks gives the number of samples in each chunk, in order; each is
	// positive and they add up to len(Samples). A chunk's sample data is
	// contiguous; chunks follow one another in the mdat with no gap. All
	// samples of one chunk have the same Entry.
	Chunks []int
	// The presentation shown is media composition time
	// [EditMediaTime90k, EditMediaTime90k+EditDur90k). EditDur90k 0 means
	// "to the end of the media" (media duration minus EditMediaTime90k).
	// Both are non-negative, and EditMediaTime90k is below the media
	// duration (the sum of the sample durations) unless it is 0.
	EditMediaTime90k int64
	EditDur90k       int64
	// CreationTime is the creation and modification time of mvhd, tkhd and
	// mdhd (seconds since 1904 UTC); the zero Time (or one before 1904)
	// writes 0.
	CreationTime time.Time
}

// maxMovieSamples bounds a movie's samples, which keeps every table (and
// so every box of the header) far below 4 GiB.
const maxMovieSamples = 1 << 26

// Errors of AppendMovieHeader and MovieHeaderSize; the returned error wraps
// one of them with details.
var (
	ErrMovieNoSamples = errors.New("mp4 movie: no samples")
	ErrMovieTooMany   = errors.New("mp4 movie: too many samples")
	ErrMovieChunks    = errors.New("mp4 movie: bad chunks")
	ErrMovieEntry     = errors.New("mp4 movie: bad sample entry")
	ErrMovieEdit      = errors.New("mp4 movie: bad edit")
	ErrMovieSize      = errors.New("mp4 movie: size out of range")
)

// Fixed box lengths of the movie header (whole boxes, headers included).
const (
	movieFtypLen = 8 + 8 + 4*4 // major, minor, four compatible brands
	mvhdLenV0    = 108
	tkhdLenV0    = 92
	mdhdLenV0    = 32
	hdlrLen      = 8 + 4 + 4 + 4 + 12 + len("Custos video\x00")
	vmhdDinfLen  = 20 + 36 // vmhd; dinf with dref and one url
	elstLenV0    = 8 + 8 + 12
	edtsHdrLen   = 8
	macEpochUnix = -2082844800 // 1904-01-01T00:00:00Z in Unix seconds
)

// moviePlan is what AppendMovieHeader learns from a Movie before writing:
// every choice of box version and form and every table's entry count, so
// the header's length (and hence the chunk offsets) is known up front.
type moviePlan struct {
	brand            string
	samples, chunks  int
	mediaDur90k      uint64 // sum of sample durations (mdhd)
	editDur90k       uint64 // mvhd and tkhd duration
	editMediaTime90k uint64
	edit             bool   // write edts/elst
	created          uint64 // seconds since 1904
	payload          uint64 // sum of sample sizes
	sttsRuns         int
	cttsRuns         int // 0: no ctts
	cttsV1           bool
	syncs            int  // key samples
	stss             bool // not every sample is key
	stscRuns         int
	constSize        uint32 // stsz sample_size; 0 when the table is written
	co64             bool
	entriesLen       int
	moovLen          int
	mdatHdrLen       int
}

// version1 reports whether a full box needs version 1 to hold values v.
func version1(v ...uint64) bool {
	for _, x := range v {
		if x > math.MaxUint32 {
			return true
		}
	}
	return false
}

// elstV1 reports whether the edit list needs version 1.
func (p *moviePlan) elstV1() bool {
	return version1(p.editDur90k) || p.editMediaTime90k > math.MaxInt32
}

// headerLen is the length of ftyp + moov + mdat header.
func (p *moviePlan) headerLen() int { return movieFtypLen + p.moovLen + p.mdatHdrLen }

// planMovie checks m and computes the plan. It never panics, whatever m
// holds, and allocates nothing beyond the plan.
func planMovie(m *Movie) (*moviePlan, error) {
	n := len(m.Samples)
	switch {
	case n == 0:
		return nil, ErrMovieNoSamples
	case n > maxMovieSamples:
		return nil, fmt.Errorf("%w: %d > %d", ErrMovieTooMany, n, maxMovieSamples)
	case len(m.Entries) == 0:
		return nil, fmt.Errorf("%w: no entries", ErrMovieEntry)
	case m.Width < 0 || m.Height < 0 || m.Width > 0xffff || m.Height > 0xffff:
		return nil, fmt.Errorf("%w: %dx%d", ErrMovieSize, m.Width, m.Height)
	}
	p := &moviePlan{samples: n, chunks: len(m.Chunks), mdatHdrLen: 8}
	for i, e := range m.Entries {
		if len(e) < 8 || uint64(binary.BigEndian.Uint32(e)) != uint64(len(e)) {
			return nil, fmt.Errorf("%w: entry %d is not one whole box", ErrMovieEntry, i)
		}
		if p.entriesLen += len(e); p.entriesLen > maxInitBox {
			return nil, fmt.Errorf("%w: entries exceed %d bytes", ErrMovieEntry, maxInitBox)
		}
	}
	switch typ := binary.BigEndian.Uint32(m.Entries[0][4:]); typ {
	case typAvc1, typAvc3:
		p.brand = "avc1"
	case typHvc1, typHev1:
		p.brand = "hvc1"
	default:
		return nil, fmt.Errorf("%w: entry 0 is %q, not H.264 or H.265", ErrMovieEntry, fourCC(typ))
	}

	// Chunks: sample counts, one entry each, stsc runs, the last one's start.
	at := 0
	var lastChunkRel uint64 // payload offset of the last chunk
	prevCount, prevEntry := -1, -1
	for c, count := range m.Chunks {
		if count <= 0 || count > n-at {
			return nil, fmt.Errorf("%w: chunk %d holds %d samples, %d left", ErrMovieChunks, c, count, n-at)
		}
		e := m.Samples[at].Entry
		if e < 0 || e >= len(m.Entries) {
			return nil, fmt.Errorf("%w: sample %d has entry %d of %d", ErrMovieEntry, at, e, len(m.Entries))
		}
		if count != prevCount || e != prevEntry {
			p.stscRuns++
			prevCount, prevEntry = count, e
		}
		if c == len(m.Chunks)-1 {
			lastChunkRel = p.payload
		}
		for i := at; i < at+count; i++ {
			s := &m.Samples[i]
			if s.Entry != e {
				return nil, fmt.Errorf("%w: chunk %d mixes entries %d and %d", ErrMovieChunks, c, e, s.Entry)
			}
			p.payload += uint64(s.Size)
		}
		at += count
	}
	if at != n {
		return nil, fmt.Errorf("%w: chunks hold %d samples, want %d", ErrMovieChunks, at, n)
	}

	// Samples: durations, composition offsets, sync samples, sizes.
	withCTS := false
	p.constSize = m.Samples[0].Size
	for i := range m.Samples {
		s := &m.Samples[i]
		if i == 0 || s.Dur90k != m.Samples[i-1].Dur90k {
			p.sttsRuns++
		}
		if i == 0 || s.CTSOffset90k != m.Samples[i-1].CTSOffset90k {
			p.cttsRuns++
		}
		withCTS = withCTS || s.CTSOffset90k != 0
		p.cttsV1 = p.cttsV1 || s.CTSOffset90k < 0
		if s.Key {
			p.syncs++
		}
		if s.Size != p.constSize {
			p.constSize = 0
		}
		p.mediaDur90k += uint64(s.Dur90k)
	}
	if !withCTS {
		p.cttsRuns = 0
	}
	p.stss = p.syncs != n

	// Edit.
	if m.EditMediaTime90k < 0 || m.EditDur90k < 0 {
		return nil, fmt.Errorf("%w: media time %d, duration %d", ErrMovieEdit, m.EditMediaTime90k, m.EditDur90k)
	}
	p.editMediaTime90k = uint64(m.EditMediaTime90k)
	if p.editMediaTime90k > 0 && p.editMediaTime90k >= p.mediaDur90k {
		return nil, fmt.Errorf("%w: media time %d not below the media duration %d",
			ErrMovieEdit, m.EditMediaTime90k, p.mediaDur90k)
	}
	p.editDur90k = uint64(m.EditDur90k)
	if p.editDur90k == 0 {
		p.editDur90k = p.mediaDur90k - p.editMediaTime90k
	}
	p.edit = p.editMediaTime90k != 0 || p.editDur90k != p.mediaDur90k
	if t := m.CreationTime; !t.IsZero() && t.Unix() > macEpochUnix {
		p.created = uint64(t.Unix() - macEpochUnix)
	}

	// Lengths. stco suffices when the last (largest) chunk offset fits in
	// 32 bits with stco's own, shorter, header; otherwise co64.
	if p.payload > math.MaxUint32-8 {
		p.mdatHdrLen = 16
	}
	p.moovLen = p.moovLenWith(false)
	if uint64(p.headerLen())+lastChunkRel > math.MaxUint32 {
		p.co64 = true
		p.moovLen = p.moovLenWith(true)
	}
	return p, nil
}

// moovLenWith returns the moov length for the plan with the given chunk
// offset box form.
func (p *moviePlan) moovLenWith(co64 bool) int {
	v1 := func(v0Len int, values ...uint64) int {
		if version1(values...) {
			return v0Len + 12 // three 32-bit fields become 64-bit
		}
		return v0Len
	}
	stbl := 8 +
		16 + p.entriesLen + // stsd
		16 + 8*p.sttsRuns + // stts
		16 + 12*p.stscRuns + // stsc
		20 // stsz without its table
	if p.cttsRuns > 0 {
		stbl += 16 + 8*p.cttsRuns
	}
	if p.stss {
		stbl += 16 + 4*p.syncs
	}
	if p.constSize == 0 {
		stbl += 4 * p.samples
	}
	if co64 {
		stbl += 16 + 8*p.chunks
	} else {
		stbl += 16 + 4*p.chunks
	}
	mdia := 8 + v1(mdhdLenV0, p.created, p.mediaDur90k) + hdlrLen + 8 + vmhdDinfLen + stbl
	trak := 8 + v1(tkhdLenV0, p.created, p.editDur90k) + mdia
	if p.edit {
		trak += edtsHdrLen + elstLenV0
		if p.elstV1() {
			trak += 8
		}
	}
	return 8 + v1(mvhdLenV0, p.created, p.editDur90k) + trak
}

// MovieHeaderSize returns len(AppendMovieHeader(nil, m)) without building
// the header: the offset in the file of the first sample's data. It does no
// I/O, allocates nothing that grows with m and fails exactly when
// AppendMovieHeader does.
func MovieHeaderSize(m *Movie) (int, error) {
	p, err := planMovie(m)
	if err != nil {
		return 0, err
	}
	return p.headerLen(), nil
}

// AppendMovieHeader appends to dst the header of a progressive MP4 file
// described by m and returns the extended buffer: ftyp (major brand isom;
// compatible isom, iso2, avc1 or hvc1 after the first entry's type, mp41),
// moov and the mdat box header. The mdat payload, the samples' data in
// decode order (chunk after chunk, sum of the sample sizes), follows
// immediately in the file; the chunk offsets in stco (co64 when any offset
// exceeds 32 bits) point into it.
//
// The moov holds one video track (track_ID 1, timescale 90000): mvhd and
// tkhd durations are the edit duration, mdhd's the sum of sample durations;
// mvhd, tkhd and mdhd use version 1 when a time or duration exceeds 32 bits.
// An edts/elst with one entry (version 1 when a value exceeds 32 bits)
// is written when the edit does not cover the whole media from time 0. The
// sample tables are stts (run-length), ctts only when some composition
// offset is non-zero (version 1 if any is negative, else version 0), stss
// only when not every sample is a sync sample, stsc (run-length over chunks,
// with the sample description index), stsz (constant-size form when all
// sizes are equal and non-zero) and stco/co64. mdat uses a 64-bit largesize
// when the payload exceeds 2^32-9 bytes.
//
// It does no I/O and allocates only when dst lacks capacity. It fails,
// returning dst unchanged and an error wrapping one of the ErrMovie errors,
// on no samples or more than 1<<26, chunk counts that are not positive or do
// not add up to the samples, a chunk mixing entries, an entry index out of
// range, an entry that is not one whole box or (for the first) not
// avc1/avc3/hvc1/hev1, a negative or out-of-range edit, or a size outside
// 0..65535. It never panics.
func AppendMovieHeader(dst []byte, m *Movie) ([]byte, error) {
	p, err := planMovie(m)
	if err != nil {
		return dst, err
	}
	start, need := len(dst), p.headerLen()
	if cap(dst)-len(dst) < need {
		grown := make([]byte, len(dst), len(dst)+need)
		copy(grown, dst)
		dst = grown
	}
	b, ftyp := startBox(dst, typFtyp)
	b = append(b, "isom"...)
	b = be32(b, 0x200) // minor_version
	b = append(b, "isomiso2"...)
	b = append(b, p.brand...)
	b = append(b, "mp41"...)
	b = endBox(b, ftyp)

	b, moov := startBox(b, typMoov)
	b = appendMvhd(b, p)
	b, trak := startBox(b, typTrak)
	b = appendTkhd(b, p, m.Width, m.Height)
	if p.edit {
		b = appendEdts(b, p)
	}
	b, mdia := startBox(b, typMdia)
	b = appendMdhd(b, p)
	b = appendHdlr(b)
	b, minf := startBox(b, typMinf)
	b = appendVmhdDinf(b)
	b, stbl := startBox(b, typStbl)
	b, stsd := startFullBox(b, typStsd, 0, 0)
	b = be32(b, uint32(len(m.Entries)))
	for _, e := range m.Entries {
		b = append(b, e...)
	}
	b = endBox(b, stsd)
	b = appendSampleTables(b, p, m)
	b = endBox(b, stbl)
	b = endBox(b, minf)
	b = endBox(b, mdia)
	b = endBox(b, trak)
	b = endBox(b, moov)

	if p.mdatHdrLen == 16 {
		b = be32(b, 1)
		b = be32(b, typMdat)
		b = be64(b, p.payload+16)
	} else {
		b = be32(b, uint32(p.payload+8))
		b = be32(b, typMdat)
	}
	if len(b)-start != need {
		return dst[:start], fmt.Errorf("mp4 movie: header is %d bytes, planned %d", len(b)-start, need)
	}
	return b, nil
}

// appendTimes appends creation_time, modification_time, timescale and
// duration, 64-bit for version 1 (v1) and 32-bit otherwise.
func appendTimes(b []byte, v1 bool, created, dur90k uint64) []byte {
	if v1 {
		b = be64(b, created)
		b = be64(b, created)
		b = be32(b, Timescale)
		return be64(b, dur90k)
	}
	b = be32(b, uint32(created))
	b = be32(b, uint32(created))
	b = be32(b, Timescale)
	return be32(b, uint32(dur90k))
}

func boolVersion(v1 bool) uint8 {
	if v1 {
		return 1
	}
	return 0
}

// appendMvhd appends the movie header box (14496-12 8.2.2).
func appendMvhd(b []byte, p *moviePlan) []byte {
	v1 := version1(p.created, p.editDur90k)
	b, mvhd := startFullBox(b, typMvhd, boolVersion(v1), 0)
	b = appendTimes(b, v1, p.created, p.editDur90k)
	b = be32(b, 0x00010000) // rate 1.0
	b = be16(b, 0x0100)     // volume 1.0
	b = appendZeros(b, 10)  // reserved
	b = appendMatrix(b)
	b = appendZeros(b, 24) // pre_defined
	b = be32(b, TrackID+1) // next_track_ID
	return endBox(b, mvhd)
}

// appendTkhd appends the track header box (8.3.2). Its layout differs from
// mvhd's: track_ID and a reserved word sit between the times and duration.
func appendTkhd(b []byte, p *moviePlan, width, height int) []byte {
	v1 := version1(p.created, p.editDur90k)
	b, tkhd := startFullBox(b, typTkhd, boolVersion(v1), 0x000003) // enabled, in movie
	if v1 {
		b = be64(b, p.created)
		b = be64(b, p.created)
		b = be32(b, TrackID)
		b = be32(b, 0) // reserved
		b = be64(b, p.editDur90k)
	} else {
		b = be32(b, uint32(p.created))
		b = be32(b, uint32(p.created))
		b = be32(b, TrackID)
		b = be32(b, 0) // reserved
		b = be32(b, uint32(p.editDur90k))
	}
	b = appendZeros(b, 8) // reserved
	b = be16(b, 0)        // layer
	b = be16(b, 0)        // alternate_group
	b = be16(b, 0)        // volume: 0 for video
	b = be16(b, 0)        // reserved
	b = appendMatrix(b)
	b = be32(b, uint32(width)<<16)
	b = be32(b, uint32(height)<<16)
	return endBox(b, tkhd)
}

// appendEdts appends an edit box with a one-entry edit list (8.6.5/8.6.6).
func appendEdts(b []byte, p *moviePlan) []byte {
	b, edts := startBox(b, boxType("edts"))
	v1 := p.elstV1()
	b, elst := startFullBox(b, boxType("elst"), boolVersion(v1), 0)
	b = be32(b, 1) // entry_count
	if v1 {
		b = be64(b, p.editDur90k)
		b = be64(b, p.editMediaTime90k)
	} else {
		b = be32(b, uint32(p.editDur90k))
		b = be32(b, uint32(p.editMediaTime90k))
	}
	b = be16(b, 1) // media_rate_integer
	b = be16(b, 0) // media_rate_fraction
	b = endBox(b, elst)
	return endBox(b, edts)
}

// appendMdhd appends the media header box (8.4.2).
func appendMdhd(b []byte, p *moviePlan) []byte {
	v1 := version1(p.created, p.mediaDur90k)
	b, mdhd := startFullBox(b, typMdhd, boolVersion(v1), 0)
	b = appendTimes(b, v1, p.created, p.mediaDur90k)
	b = be16(b, 0x55c4) // language "und"
	b = be16(b, 0)      // pre_defined
	return endBox(b, mdhd)
}

// appendSampleTables appends stts, ctts, stss, stsc, stsz and stco/co64
// (8.6.1.2, 8.6.1.3, 8.6.2, 8.7.4, 8.7.3, 8.7.5) as planned.
func appendSampleTables(b []byte, p *moviePlan, m *Movie) []byte {
	ss := m.Samples
	b, stts := startFullBox(b, boxType("stts"), 0, 0)
	b = be32(b, uint32(p.sttsRuns))
	for i := 0; i < len(ss); {
		j := i + 1
		for j < len(ss) && ss[j].Dur90k == ss[i].Dur90k {
			j++
		}
		b = be32(b, uint32(j-i))
		b = be32(b, ss[i].Dur90k)
		i = j
	}
	b = endBox(b, stts)

	if p.cttsRuns > 0 {
		var ctts int
		b, ctts = startFullBox(b, boxType("ctts"), boolVersion(p.cttsV1), 0)
		b = be32(b, uint32(p.cttsRuns))
		for i := 0; i < len(ss); {
			j := i + 1
			for j < len(ss) && ss[j].CTSOffset90k == ss[i].CTSOffset90k {
				j++
			}
			b = be32(b, uint32(j-i))
			b = be32(b, uint32(ss[i].CTSOffset90k))
			i = j
		}
		b = endBox(b, ctts)
	}

	if p.stss {
		var stss int
		b, stss = startFullBox(b, boxType("stss"), 0, 0)
		b = be32(b, uint32(p.syncs))
		for i := range ss {
			if ss[i].Key {
				b = be32(b, uint32(i+1))
			}
		}
		b = endBox(b, stss)
	}

	b, stsc := startFullBox(b, boxType("stsc"), 0, 0)
	b = be32(b, uint32(p.stscRuns))
	at, prevCount, prevEntry := 0, -1, -1
	for c, count := range m.Chunks {
		if e := ss[at].Entry; count != prevCount || e != prevEntry {
			b = be32(b, uint32(c+1))
			b = be32(b, uint32(count))
			b = be32(b, uint32(e+1))
			prevCount, prevEntry = count, e
		}
		at += count
	}
	b = endBox(b, stsc)

	b, stsz := startFullBox(b, boxType("stsz"), 0, 0)
	b = be32(b, p.constSize)
	b = be32(b, uint32(len(ss)))
	if p.constSize == 0 {
		for i := range ss {
			b = be32(b, ss[i].Size)
		}
	}
	b = endBox(b, stsz)

	typ := boxType("stco")
	if p.co64 {
		typ = boxType("co64")
	}
	b, stco := startFullBox(b, typ, 0, 0)
	b = be32(b, uint32(len(m.Chunks)))
	off := uint64(p.headerLen())
	at = 0
	for _, count := range m.Chunks {
		if p.co64 {
			b = be64(b, off)
		} else {
			b = be32(b, uint32(off))
		}
		for _, s := range ss[at : at+count] {
			off += uint64(s.Size)
		}
		at += count
	}
	return endBox(b, stco)
}
