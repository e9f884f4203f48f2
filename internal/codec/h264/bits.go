package h264

import "errors"

// ErrShortData means a bit reader ran past the end of its data, or an
// exp-Golomb code was longer than 32 bits.
var ErrShortData = errors.New("bitstream: not enough data")

// BitReader reads an RBSP (emulation prevention already removed) most
// significant bit first, including exp-Golomb codes (ue(v), se(v)). Errors
// are sticky: after the first one every read returns 0 and Err reports it,
// so a parser can read a run of fields and check once. A BitReader is not
// safe for concurrent use; the zero value reads nothing.
type BitReader struct {
	buf []byte
	pos int // in bits
	err error
}

// NewBitReader returns a reader over rbsp, which it does not modify.
func NewBitReader(rbsp []byte) *BitReader { return &BitReader{buf: rbsp} }

// Err returns the first error met, or nil.
func (r *BitReader) Err() error { return r.err }

// BitsLeft returns the number of unread bits.
func (r *BitReader) BitsLeft() int { return len(r.buf)*8 - r.pos }

func (r *BitReader) fail() {
	if r.err == nil {
		r.err = ErrShortData
	}
	r.pos = len(r.buf) * 8
}

// Bit reads one bit.
func (r *BitReader) Bit() uint32 {
	if r.err != nil || r.pos >= len(r.buf)*8 {
		r.fail()
		return 0
	}
	b := uint32(r.buf[r.pos>>3]>>(7-uint(r.pos&7))) & 1
	r.pos++
	return b
}

// Flag reads one bit as a boolean.
func (r *BitReader) Flag() bool { return r.Bit() == 1 }

// Bits reads n bits (0 <= n <= 32) as an unsigned number.
func (r *BitReader) Bits(n int) uint32 {
	if n < 0 || n > 32 {
		r.fail()
		return 0
	}
	if r.err != nil || r.BitsLeft() < n {
		r.fail()
		return 0
	}
	var v uint32
	for n > 0 {
		// Take as many bits as remain in the current byte, at most n.
		off := r.pos & 7
		take := 8 - off
		if take > n {
			take = n
		}
		b := uint32(r.buf[r.pos>>3]) >> uint(8-off-take) & (1<<uint(take) - 1)
		v = v<<uint(take) | b
		r.pos += take
		n -= take
	}
	return v
}

// Skip skips n bits.
func (r *BitReader) Skip(n int) {
	if r.err != nil || n < 0 || r.BitsLeft() < n {
		r.fail()
		return
	}
	r.pos += n
}

// UE reads an unsigned exp-Golomb code, ue(v). Codes above 2^32-2 fail.
func (r *BitReader) UE() uint32 {
	zeros := 0
	for r.Bit() == 0 {
		if r.err != nil {
			return 0
		}
		zeros++
		if zeros > 31 {
			r.fail()
			return 0
		}
	}
	if zeros == 0 {
		return 0
	}
	return (1<<uint(zeros) - 1) + r.Bits(zeros)
}

// SE reads a signed exp-Golomb code, se(v).
func (r *BitReader) SE() int32 {
	k := r.UE()
	if k&1 == 1 {
		return int32((k + 1) / 2)
	}
	return -int32(k / 2)
}
