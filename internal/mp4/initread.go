package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/custos-nvr/custos/internal/media"
)

// scanInit reads ftyp and moov at the start of the file and returns a
// FileInfo with the track, InitEnd and ValidEnd (= InitEnd) filled in.
// Every failure is an error: without an init segment nothing else can be
// trusted.
func scanInit(r io.ReaderAt, size int64) (*FileInfo, error) {
	h, err := readBoxHeader(r, 0, size)
	if err != nil {
		return nil, initErr(err, "ftyp")
	}
	if h.typ != typFtyp {
		return nil, fmt.Errorf("file starts with %q, not ftyp", fourCC(h.typ))
	}
	off := h.end()
	for i := 0; ; i++ {
		if i >= maxInitPrefixBox {
			return nil, errors.New("no moov among the first boxes")
		}
		h, err = readBoxHeader(r, off, size)
		if err != nil {
			return nil, initErr(err, "moov")
		}
		if h.typ == typMoov {
			break
		}
		switch h.typ {
		case typFree, typSkip, typUUID:
			off = h.end()
		default:
			return nil, fmt.Errorf("%q box before moov", fourCC(h.typ))
		}
	}
	moov, err := readBox(r, h, maxInitBox)
	if err != nil {
		return nil, initErr(err, "moov")
	}
	info := &FileInfo{InitEnd: h.end(), ValidEnd: h.end()}
	if err := parseMoov(moov, info); err != nil {
		return nil, fmt.Errorf("moov: %w", err)
	}
	return info, nil
}

func initErr(err error, what string) error {
	if err == errStop {
		return fmt.Errorf("%s missing or truncated", what)
	}
	return err
}

// parseMoov fills info from the first video trak of a moov body and its
// trex.
func parseMoov(moov []byte, info *FileInfo) error {
	found := false
	var trexes [][]byte
	err := walk(moov, func(typ uint32, body []byte) error {
		switch typ {
		case typTrak:
			if found {
				return nil
			}
			ok, err := parseTrak(body, info)
			found = ok
			return err
		case typMvex:
			return walk(body, func(typ uint32, body []byte) error {
				if typ == typTrex && len(trexes) < 64 {
					trexes = append(trexes, body)
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !found {
		return errors.New("no H.264 or H.265 video track")
	}
	for _, t := range trexes {
		if len(t) >= 24 && binary.BigEndian.Uint32(t[4:]) == info.TrackID {
			info.trex = sampleDefaults{
				dur:   binary.BigEndian.Uint32(t[12:]),
				size:  binary.BigEndian.Uint32(t[16:]),
				flags: binary.BigEndian.Uint32(t[20:]),
			}
			return nil
		}
	}
	return errors.New("no trex for the video track (not a fragmented file)")
}

// parseTrak parses a trak; ok is false when it is not a video track.
func parseTrak(trak []byte, info *FileInfo) (ok bool, err error) {
	var tkhd, mdia []byte
	if err := walk(trak, func(typ uint32, body []byte) error {
		switch typ {
		case typTkhd:
			tkhd = body
		case typMdia:
			mdia = body
		}
		return nil
	}); err != nil {
		return false, err
	}
	var mdhd, hdlr, stsd []byte
	if err := walk(mdia, func(typ uint32, body []byte) error {
		switch typ {
		case typMdhd:
			mdhd = body
		case typHdlr:
			hdlr = body
		case typMinf:
			return walk(body, func(typ uint32, body []byte) error {
				if typ != typStbl {
					return nil
				}
				return walk(body, func(typ uint32, body []byte) error {
					if typ == typStsd {
						stsd = body
					}
					return nil
				})
			})
		}
		return nil
	}); err != nil {
		return false, err
	}
	if len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
		return false, nil
	}
	// tkhd: track_ID after the creation and modification times.
	switch {
	case len(tkhd) >= 24 && tkhd[0] == 1:
		info.TrackID = binary.BigEndian.Uint32(tkhd[20:])
	case len(tkhd) >= 16 && tkhd[0] == 0:
		info.TrackID = binary.BigEndian.Uint32(tkhd[12:])
	default:
		return false, errors.New("bad tkhd")
	}
	if info.TrackID == 0 {
		return false, errors.New("track_ID 0")
	}
	switch {
	case len(mdhd) >= 24 && mdhd[0] == 1:
		info.Timescale = binary.BigEndian.Uint32(mdhd[20:])
	case len(mdhd) >= 16 && mdhd[0] == 0:
		info.Timescale = binary.BigEndian.Uint32(mdhd[12:])
	default:
		return false, errors.New("bad mdhd")
	}
	if info.Timescale != Timescale {
		return false, fmt.Errorf("media timescale %d, want %d", info.Timescale, Timescale)
	}
	if len(stsd) < 8 {
		return false, errors.New("missing stsd")
	}
	done := false
	err = walk(stsd[8:], func(typ uint32, body []byte) error {
		if done {
			return nil
		}
		done = true
		return parseSampleEntry(typ, body, &info.Track)
	})
	if err == nil && !done {
		err = errors.New("empty stsd")
	}
	return err == nil, err
}

// visualEntryLen is the length of the VisualSampleEntry fields before its
// child boxes.
const visualEntryLen = 78

// parseSampleEntry parses an avc1/avc3/hvc1/hev1 sample entry body.
func parseSampleEntry(typ uint32, body []byte, t *Track) error {
	var config uint32
	switch typ {
	case typAvc1, typAvc3:
		t.Codec, config = media.CodecH264, typAvcC
	case typHvc1, typHev1:
		t.Codec, config = media.CodecH265, typHvcC
	default:
		return fmt.Errorf("sample entry %q is not H.264 or H.265", fourCC(typ))
	}
	if len(body) < visualEntryLen {
		return errors.New("short visual sample entry")
	}
	t.Width = int(binary.BigEndian.Uint16(body[24:]))
	t.Height = int(binary.BigEndian.Uint16(body[26:]))
	var rec []byte
	if err := walk(body[visualEntryLen:], func(typ uint32, b []byte) error {
		if typ == config {
			rec = b
		}
		return nil
	}); err != nil {
		return err
	}
	if rec == nil {
		return fmt.Errorf("no %s", fourCC(config))
	}
	var err error
	if config == typAvcC {
		t.Params, err = parseAvcC(rec)
	} else {
		t.Params, err = parseHvcC(rec)
	}
	if err == nil && !t.Params.Complete(t.Codec) {
		err = fmt.Errorf("%s lacks parameter sets", fourCC(config))
	}
	return err
}

// paramReader reads length-prefixed parameter sets.
type paramReader struct{ b []byte }

func (p *paramReader) u8() (byte, bool) {
	if len(p.b) < 1 {
		return 0, false
	}
	v := p.b[0]
	p.b = p.b[1:]
	return v, true
}

func (p *paramReader) u16() (uint16, bool) {
	if len(p.b) < 2 {
		return 0, false
	}
	v := binary.BigEndian.Uint16(p.b)
	p.b = p.b[2:]
	return v, true
}

func (p *paramReader) nalu() ([]byte, bool) {
	n, ok := p.u16()
	if !ok || len(p.b) < int(n) {
		return nil, false
	}
	v := p.b[:n:n]
	p.b = p.b[n:]
	return v, true
}

var errShortConfig = errors.New("truncated decoder configuration record")

// parseAvcC returns the first SPS and PPS of an AVCDecoderConfigurationRecord.
// The returned slices are copies.
func parseAvcC(b []byte) (media.ParamSets, error) {
	var ps media.ParamSets
	if len(b) < 6 || b[0] != 1 {
		return ps, errors.New("bad avcC")
	}
	p := paramReader{b[5:]}
	for _, dst := range []*[]byte{&ps.SPS, &ps.PPS} {
		n, ok := p.u8()
		if !ok {
			return ps, errShortConfig
		}
		if dst == &ps.SPS {
			n &= 0x1f
		}
		for i := 0; i < int(n); i++ {
			v, ok := p.nalu()
			if !ok {
				return ps, errShortConfig
			}
			if *dst == nil {
				*dst = append([]byte(nil), v...)
			}
		}
	}
	return ps, nil
}

// parseHvcC returns the first VPS, SPS and PPS of an
// HEVCDecoderConfigurationRecord. The returned slices are copies.
func parseHvcC(b []byte) (media.ParamSets, error) {
	var ps media.ParamSets
	if len(b) < 23 || b[0] != 1 {
		return ps, errors.New("bad hvcC")
	}
	p := paramReader{b[22:]}
	arrays, _ := p.u8()
	for a := 0; a < int(arrays); a++ {
		typ, ok := p.u8()
		if !ok {
			return ps, errShortConfig
		}
		n, ok := p.u16()
		if !ok {
			return ps, errShortConfig
		}
		var dst *[]byte
		switch typ & 0x3f {
		case 32:
			dst = &ps.VPS
		case 33:
			dst = &ps.SPS
		case 34:
			dst = &ps.PPS
		}
		for i := 0; i < int(n); i++ {
			v, ok := p.nalu()
			if !ok {
				return ps, errShortConfig
			}
			if dst != nil && *dst == nil {
				*dst = append([]byte(nil), v...)
			}
		}
	}
	return ps, nil
}
