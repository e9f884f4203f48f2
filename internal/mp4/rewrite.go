package mp4

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

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

// RewriteMoof returns a copy of moof, a movie fragment box, with the mfhd
// sequence number set to seq and the tfdt baseMediaDecodeTime set to
// base90k, so that a fragment can be served at another position of another
// stream; the mdat that followed it follows the copy unchanged.
//
// It accepts what AppendFragment writes and what ScanFile finds in such
// files: a moof with one mfhd and one traf for track 1, the traf holding one
// tfhd (without an explicit base_data_offset, so data offsets are relative
// to the moof start), one tfdt and any number of truns; other boxes are
// copied as they are. The copy's tfdt is always version 1. A version 0 tfdt
// grows by 4 bytes, and then the moof and traf sizes and every trun
// data_offset grow by the same amount, keeping each sample's position
// relative to the end of the moof (the first trun must then carry a
// data_offset). The copy's moof and traf headers are 32-bit; the change in
// length that may bring to a box written with a 64-bit size is accounted
// for the same way.
//
// It does no I/O, never panics, and fails on a moof larger than 32 MiB or
// one it cannot parse or adjust: boxes that overrun, a missing or repeated
// mfhd, traf, tfhd or tfdt, a traf for another track, a tfdt of another
// version, or a data_offset that would overflow.
func RewriteMoof(moof []byte, seq uint32, base90k uint64) ([]byte, error) {
	out, err := rewriteMoof(moof, seq, base90k)
	if err != nil {
		return nil, fmt.Errorf("mp4 rewrite moof: %w", err)
	}
	return out, nil
}

func rewriteMoof(moof []byte, seq uint32, base90k uint64) ([]byte, error) {
	if len(moof) > maxMoofBox {
		return nil, fmt.Errorf("moof of %d bytes exceeds %d", len(moof), maxMoofBox)
	}
	var top []childBox
	if err := forBoxes(moof, func(c childBox) error {
		top = append(top, c)
		return nil
	}); err != nil {
		return nil, err
	}
	if len(top) != 1 || top[0].typ != typMoof {
		return nil, errors.New("input is not exactly one moof box")
	}

	out := make([]byte, 0, len(moof)+4)
	out, moofAt := startBox(out, typMoof)
	var (
		mfhds, trafs int
		dataOffsets  []int // positions in out of trun data_offset fields
		firstWithout bool  // the traf's first trun has no data_offset
	)
	err := forBoxes(top[0].body, func(c childBox) error {
		switch c.typ {
		case typMfhd:
			if mfhds++; mfhds > 1 {
				return errors.New("more than one mfhd")
			}
			if len(c.body) < 8 {
				return errors.New("short mfhd")
			}
			at := len(out)
			out = append(out, c.box...)
			binary.BigEndian.PutUint32(out[at+len(c.box)-len(c.body)+4:], seq)
		case typTraf:
			if trafs++; trafs > 1 {
				return errors.New("more than one traf")
			}
			var err error
			out, dataOffsets, firstWithout, err = rewriteTraf(out, c.body, base90k)
			return err
		default:
			out = append(out, c.box...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if mfhds == 0 || trafs == 0 {
		return nil, errors.New("moof without mfhd or traf")
	}
	out = endBox(out, moofAt)

	delta := int64(len(out)) - int64(len(moof))
	if delta == 0 {
		return out, nil
	}
	if firstWithout {
		return nil, fmt.Errorf("moof length changes by %d bytes but the first trun has no data_offset", delta)
	}
	for _, at := range dataOffsets {
		v := int64(int32(binary.BigEndian.Uint32(out[at:]))) + delta
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, fmt.Errorf("trun data_offset overflows when moved by %d bytes", delta)
		}
		binary.BigEndian.PutUint32(out[at:], uint32(int32(v)))
	}
	return out, nil
}

// rewriteTraf appends a copy of the traf with body traf to out, with a
// version 1 tfdt holding base90k. It returns where in out each trun's
// data_offset is and whether the first trun lacks one.
func rewriteTraf(out, traf []byte, base90k uint64) (_ []byte, dataOffsets []int, firstWithout bool, _ error) {
	out, trafAt := startBox(out, typTraf)
	var tfhds, tfdts, truns int
	err := forBoxes(traf, func(c childBox) error {
		switch c.typ {
		case typTfhd:
			if tfhds++; tfhds > 1 {
				return errors.New("more than one tfhd")
			}
			if len(c.body) < 8 {
				return errors.New("short tfhd")
			}
			flags := binary.BigEndian.Uint32(c.body) & 0xffffff
			if flags&tfhdBaseDataOffset != 0 {
				return errors.New("tfhd with an explicit base_data_offset")
			}
			if id := binary.BigEndian.Uint32(c.body[4:]); id != TrackID {
				return fmt.Errorf("traf for track %d, want %d", id, TrackID)
			}
			out = append(out, c.box...)
		case typTfdt:
			if tfdts++; tfdts > 1 {
				return errors.New("more than one tfdt")
			}
			if len(c.body) < 4 {
				return errors.New("short tfdt")
			}
			switch v := c.body[0]; {
			case v == 0 && len(c.body) == 8, v == 1 && len(c.body) == 12:
			default:
				return fmt.Errorf("tfdt version %d with %d bytes", v, len(c.body))
			}
			var at int
			out, at = startFullBox(out, typTfdt, 1, binary.BigEndian.Uint32(c.body)&0xffffff)
			out = be64(out, base90k)
			out = endBox(out, at)
		case typTrun:
			if len(c.body) < 8 {
				return errors.New("short trun")
			}
			flags := binary.BigEndian.Uint32(c.body) & 0xffffff
			at := len(out) + len(c.box) - len(c.body) + 8
			out = append(out, c.box...)
			if flags&trunDataOffset != 0 {
				if len(c.body) < 12 {
					return errors.New("short trun")
				}
				dataOffsets = append(dataOffsets, at)
			} else if truns == 0 {
				firstWithout = true
			}
			truns++
		default:
			out = append(out, c.box...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, false, err
	}
	if tfhds == 0 || tfdts == 0 {
		return nil, nil, false, errors.New("traf without tfhd or tfdt")
	}
	return endBox(out, trafAt), dataOffsets, firstWithout, nil
}
