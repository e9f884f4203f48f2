package mp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// parsedMovie is what readMovieHeader finds in a header AppendMovieHeader
// wrote: enough to check every field against the Movie it came from.
type parsedMovie struct {
	brands                             []string // major, then compatible
	versions                           map[string]byte
	mvhdDur, tkhdDur, mdhdDur, created uint64
	elstDur, mdatPayload               uint64
	elstTime                           int64
	width, height, mdatHdrLen          int
	elst, stss, ctts                   bool
	entries                            [][]byte
	samples                            []MovieSample
	offsets                            []uint64 // file offset of each sample's data
	chunks                             []int
	chunkBox                           string // "stco" or "co64"
	stszConst                          uint32
}

// rd reads big-endian fields and remembers the first overrun.
type rd struct {
	b   []byte
	err error
}

func (r *rd) n(k int) []byte {
	if r.err != nil || len(r.b) < k {
		r.err = errors.New("short box")
		return make([]byte, k)
	}
	v := r.b[:k]
	r.b = r.b[k:]
	return v
}
func (r *rd) u32() uint32 { return binary.BigEndian.Uint32(r.n(4)) }
func (r *rd) u64() uint64 { return binary.BigEndian.Uint64(r.n(8)) }

// timesDur reads the version, times and duration of an mvhd or mdhd body.
func (r *rd) timesDur() (v byte, created, dur uint64) {
	if v = r.n(4)[0]; v == 1 {
		created, _, _, dur = r.u64(), r.u64(), r.u32(), r.u64()
	} else {
		created, _, _, dur = uint64(r.u32()), r.u32(), r.u32(), uint64(r.u32())
	}
	return v, created, dur
}

// flatten records the body of every box in b under its type, descending
// into the containers on the way to the sample tables.
func flatten(b []byte, boxes map[string][]byte) error {
	return walk(b, func(typ uint32, body []byte) error {
		name := fourCC(typ)
		if _, dup := boxes[name]; dup {
			return fmt.Errorf("two %s boxes", name)
		}
		boxes[name] = body
		switch name {
		case "moov", "trak", "edts", "mdia", "minf", "stbl":
			return flatten(body, boxes)
		}
		return nil
	})
}

// readMovieHeader parses hdr (ftyp, moov, mdat header, nothing else) and
// rebuilds the per-sample view from the sample tables.
func readMovieHeader(hdr []byte) (*parsedMovie, error) {
	p := &parsedMovie{versions: map[string]byte{}}
	if len(hdr) < 8 || string(hdr[4:8]) != "ftyp" {
		return nil, errors.New("no ftyp")
	}
	ftypLen := int(binary.BigEndian.Uint32(hdr))
	for i := 8; i+4 <= ftypLen && i+4 <= len(hdr); i += 4 {
		if i != 12 { // minor_version
			p.brands = append(p.brands, string(hdr[i:i+4]))
		}
	}
	moovLen := 0
	if len(hdr) >= ftypLen+8 && string(hdr[ftypLen+4:ftypLen+8]) == "moov" {
		moovLen = int(binary.BigEndian.Uint32(hdr[ftypLen:]))
	}
	if moovLen < 8 || ftypLen+moovLen > len(hdr) {
		return nil, errors.New("no moov after ftyp")
	}
	boxes := map[string][]byte{}
	if err := flatten(hdr[ftypLen:ftypLen+moovLen], boxes); err != nil {
		return nil, err
	}
	r := rd{b: boxes["mvhd"]}
	p.versions["mvhd"], p.created, p.mvhdDur = r.timesDur()
	r2 := rd{b: boxes["mdhd"]}
	p.versions["mdhd"], _, p.mdhdDur = r2.timesDur()
	r3 := rd{b: boxes["tkhd"]}
	if v := r3.n(4)[0]; v == 1 {
		p.versions["tkhd"], _, p.tkhdDur = v, r3.n(24), r3.u64()
	} else {
		p.versions["tkhd"], _, p.tkhdDur = v, r3.n(16), uint64(r3.u32())
	}
	r3.n(52)
	p.width, p.height = int(r3.u32()>>16), int(r3.u32()>>16)
	if r.err != nil || r2.err != nil || r3.err != nil {
		return nil, errors.New("short mvhd, mdhd or tkhd")
	}
	if elst, ok := boxes["elst"]; ok {
		r := rd{b: elst}
		v := r.n(4)[0]
		p.versions["elst"], p.elst = v, true
		count := r.u32()
		if v == 1 {
			p.elstDur, p.elstTime = r.u64(), int64(r.u64())
		} else {
			p.elstDur, p.elstTime = uint64(r.u32()), int64(int32(r.u32()))
		}
		if count != 1 || r.u32() != 0x00010000 || r.err != nil {
			return nil, errors.New("elst is not one entry at rate 1")
		}
	}
	rest := hdr[ftypLen+moovLen:]
	switch {
	case len(rest) == 8 && string(rest[4:]) == "mdat":
		p.mdatHdrLen, p.mdatPayload = 8, uint64(binary.BigEndian.Uint32(rest))-8
	case len(rest) == 16 && binary.BigEndian.Uint32(rest) == 1 && string(rest[4:8]) == "mdat":
		p.mdatHdrLen, p.mdatPayload = 16, binary.BigEndian.Uint64(rest[8:])-16
	default:
		return nil, fmt.Errorf("header does not end with an mdat header: % x", rest)
	}
	return p, p.readTables(boxes)
}

// readTables expands the sample tables into samples and offsets.
func (p *parsedMovie) readTables(boxes map[string][]byte) error {
	table := func(name string) (version byte, r *rd, count int) {
		r = &rd{b: boxes[name]}
		version = r.n(4)[0]
		return version, r, int(r.u32())
	}
	// runs expands a run-length table of (count, value) into set.
	runs := func(name string, set func(i int, v uint32)) error {
		_, r, count := table(name)
		i := 0
		for range count {
			k, v := int(r.u32()), r.u32()
			for ; k > 0 && i < len(p.samples); k-- {
				set(i, v)
				i++
			}
		}
		if i != len(p.samples) || r.err != nil {
			return fmt.Errorf("%s covers %d of %d samples (%v)", name, i, len(p.samples), r.err)
		}
		return nil
	}
	if b := boxes["stsd"]; len(b) < 8 || forBoxes(b[8:], func(c childBox) error {
		p.entries = append(p.entries, c.box)
		return nil
	}) != nil || len(p.entries) != int(binary.BigEndian.Uint32(b[4:])) {
		return errors.New("bad stsd")
	}
	_, r, constSize := table("stsz")
	n := int(r.u32())
	if n > maxMovieSamples {
		return fmt.Errorf("stsz count %d", n)
	}
	p.stszConst, p.samples = uint32(constSize), make([]MovieSample, n)
	for i := range p.samples {
		p.samples[i] = MovieSample{Size: p.stszConst, Key: true}
		if p.stszConst == 0 {
			p.samples[i].Size = r.u32()
		}
	}
	if err := runs("stts", func(i int, v uint32) { p.samples[i].Dur90k = v }); err != nil {
		return err
	}
	if _, p.ctts = boxes["ctts"]; p.ctts {
		p.versions["ctts"] = boxes["ctts"][0]
		if err := runs("ctts", func(i int, v uint32) { p.samples[i].CTSOffset90k = int32(v) }); err != nil {
			return err
		}
	}
	if _, p.stss = boxes["stss"]; p.stss {
		_, r, count := table("stss")
		for i := range p.samples {
			p.samples[i].Key = false
		}
		for range count {
			if s := int(r.u32()); s >= 1 && s <= n {
				p.samples[s-1].Key = true
			}
		}
	}
	p.chunkBox = "stco"
	if _, ok := boxes["co64"]; ok {
		p.chunkBox = "co64"
	}
	_, rc, chunks := table(p.chunkBox)
	_, rs, stscRuns := table("stsc")
	type run struct{ first, per, sdi int }
	stsc := make([]run, min(stscRuns, n))
	for i := range stsc {
		stsc[i] = run{int(rs.u32()), int(rs.u32()), int(rs.u32())}
	}
	i := 0
	for c := range min(chunks, n) {
		var cur run
		for _, s := range stsc {
			if s.first <= c+1 {
				cur = s
			}
		}
		p.chunks = append(p.chunks, cur.per)
		off := uint64(rc.u32())
		if p.chunkBox == "co64" {
			off = off<<32 | uint64(rc.u32())
		}
		for k := 0; k < cur.per && i < n; k++ {
			p.samples[i].Entry = cur.sdi - 1
			p.offsets = append(p.offsets, off)
			off += uint64(p.samples[i].Size)
			i++
		}
	}
	if i != n || rc.err != nil || rs.err != nil {
		return fmt.Errorf("chunks cover %d of %d samples", i, n)
	}
	return nil
}

// checkMovieHeader parses hdr and compares it with m: tables, offsets
// (contiguous from the end of the header), durations, sizes and forms.
func checkMovieHeader(hdr []byte, m *Movie) (*parsedMovie, error) {
	p, err := readMovieHeader(hdr)
	if err != nil {
		return nil, err
	}
	if size, err := MovieHeaderSize(m); err != nil || size != len(hdr) {
		return p, fmt.Errorf("MovieHeaderSize %d, %v; header is %d bytes", size, err, len(hdr))
	}
	var mediaDur, payload uint64
	allKey, constSize := true, m.Samples[0].Size
	for _, s := range m.Samples {
		mediaDur += uint64(s.Dur90k)
		payload += uint64(s.Size)
		allKey = allKey && s.Key
		if s.Size != constSize {
			constSize = 0
		}
	}
	editDur := uint64(m.EditDur90k)
	if editDur == 0 {
		editDur = mediaDur - uint64(m.EditMediaTime90k)
	}
	wantBrand := "avc1"
	if t := string(m.Entries[0][4:8]); t == "hvc1" || t == "hev1" {
		wantBrand = "hvc1"
	}
	switch {
	case !slices.Equal(p.brands, []string{"isom", "isom", "iso2", wantBrand, "mp41"}):
		return p, fmt.Errorf("brands %q", p.brands)
	case !slices.EqualFunc(p.entries, m.Entries, bytes.Equal):
		return p, fmt.Errorf("stsd has %d entries, not the %d given", len(p.entries), len(m.Entries))
	case p.mdhdDur != mediaDur || p.mvhdDur != editDur || p.tkhdDur != editDur:
		return p, fmt.Errorf("durations mdhd %d mvhd %d tkhd %d, want %d %d", p.mdhdDur, p.mvhdDur, p.tkhdDur, mediaDur, editDur)
	case p.width != m.Width || p.height != m.Height:
		return p, fmt.Errorf("tkhd size %dx%d", p.width, p.height)
	case p.mdatPayload != payload:
		return p, fmt.Errorf("mdat payload %d, want %d", p.mdatPayload, payload)
	case p.stss == allKey:
		return p, fmt.Errorf("stss present %v with all key %v", p.stss, allKey)
	case p.stszConst != constSize:
		return p, fmt.Errorf("stsz sample_size %d, want %d", p.stszConst, constSize)
	case !slices.Equal(p.chunks, m.Chunks):
		return p, fmt.Errorf("chunks %v, want %v", p.chunks, m.Chunks)
	case !slices.Equal(p.samples, m.Samples):
		return p, fmt.Errorf("samples differ:\n got %v\nwant %v", p.samples, m.Samples)
	}
	wantEdit := m.EditMediaTime90k != 0 || editDur != mediaDur
	if p.elst != wantEdit || wantEdit && (p.elstDur != editDur || p.elstTime != m.EditMediaTime90k) {
		return p, fmt.Errorf("elst %v %d %d, want %v %d %d", p.elst, p.elstDur, p.elstTime, wantEdit, editDur, m.EditMediaTime90k)
	}
	off := uint64(len(hdr))
	for i, o := range p.offsets {
		if o != off {
			return p, fmt.Errorf("sample %d at %d, want %d", i, o, off)
		}
		off += uint64(m.Samples[i].Size)
	}
	return p, nil
}
