package sim

import (
	"embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/custos-nvr/custos/internal/codec/h264"
	"github.com/custos-nvr/custos/internal/codec/h265"
	"github.com/custos-nvr/custos/internal/media"
	rtph264 "github.com/custos-nvr/custos/internal/rtp/h264"
	rtph265 "github.com/custos-nvr/custos/internal/rtp/h265"
)

//go:embed fixtures/main.h264 fixtures/sub.h264 fixtures/main.h265
var fixturesFS embed.FS

// FixtureFPS is the frame rate of every embedded fixture, and
// FixtureFrameDur90k the duration of one frame on the 90 kHz clock.
const (
	FixtureFPS         = 25
	FixtureFrameDur90k = 90000 / FixtureFPS
	// payloadMTU bounds RTP payloads so packets fit an Ethernet MTU.
	payloadMTU = 1400
)

// clip is a fixture prepared for serving: its RTP packets (12-byte header
// included, sequence number, timestamp and SSRC left for each session to
// stamp), grouped per access unit. A clip is immutable and shared by all
// sessions.
type clip struct {
	codec  media.Codec
	width  int
	height int
	params media.ParamSets
	frames []clipFrame
	sdp    string // the media section, without control attribute
	bytes  int
}

type clipFrame struct {
	key     bool
	packets [][]byte
}

// FixtureFrame is one access unit of an embedded fixture.
type FixtureFrame struct {
	NALUs [][]byte
	Key   bool
}

// Fixture returns the access units of an embedded fixture ("main.h264",
// "sub.h264" or "main.h265"), in order, and its parameter sets: material
// for benchmarks that need real coded video without a camera. The slices
// share the embedded bytes and must not be modified.
func Fixture(name string) ([]FixtureFrame, media.ParamSets, error) {
	codec := media.CodecH264
	if strings.HasSuffix(name, ".h265") {
		codec = media.CodecH265
	}
	raw, err := fixturesFS.ReadFile("fixtures/" + name)
	if err != nil {
		return nil, media.ParamSets{}, fmt.Errorf("fixture %s: %w", name, err)
	}
	c := &clip{codec: codec}
	var out []FixtureFrame
	splitAUs(raw, codec, c.noteParam, func(au [][]byte) {
		key := false
		for _, n := range au {
			key = key || codec == media.CodecH264 && h264.IsKey(n) || codec == media.CodecH265 && h265.IsKey(n)
		}
		out = append(out, FixtureFrame{NALUs: au, Key: key})
	})
	return out, c.params, nil
}

// splitAUs groups the NAL units of an Annex B stream into access units
// and calls fn for each; note sees every NAL unit first.
func splitAUs(raw []byte, codec media.Codec, note func([]byte), fn func(au [][]byte)) {
	var au [][]byte
	flush := func() {
		if len(au) == 0 {
			return
		}
		fn(au)
		au = nil
	}
	for _, nalu := range h264.SplitAnnexB(raw) {
		if len(nalu) == 0 {
			continue
		}
		if startsPicture(codec, nalu) && hasVCL(codec, au) {
			flush()
		}
		if startsAU(codec, nalu) && hasVCL(codec, au) {
			flush()
		}
		note(nalu)
		au = append(au, nalu)
	}
	flush()
}

// loadClip reads an embedded Annex B fixture and packetizes it once.
func loadClip(name string, codec media.Codec) (*clip, error) {
	raw, err := fixturesFS.ReadFile("fixtures/" + name)
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	c := &clip{codec: codec}
	splitAUs(raw, codec, c.noteParam, c.addFrame)
	if len(c.frames) == 0 || !c.frames[0].key {
		return nil, fmt.Errorf("fixture %s: must start with a key frame", name)
	}
	if !c.params.Complete(codec) {
		return nil, fmt.Errorf("fixture %s: parameter sets missing", name)
	}
	if err := c.describe(); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	return c, nil
}

// startsAU reports NAL units that may only begin an access unit (AUD,
// parameter sets, SEI).
func startsAU(codec media.Codec, nalu []byte) bool {
	if codec == media.CodecH265 {
		t := h265.Type(nalu)
		return h265.IsParamSet(nalu) || t == h265.NALAUD || t == h265.NALSEIPrefix
	}
	t := h264.Type(nalu)
	return h264.IsParamSet(nalu) || t == h264.NALAUD || t == h264.NALSEI
}

// startsPicture reports a slice that is the first of a new picture
// (H.264 first_mb_in_slice == 0, H.265 first_slice_segment_in_pic_flag).
func startsPicture(codec media.Codec, nalu []byte) bool {
	if codec == media.CodecH265 {
		return h265.IsVCL(nalu) && len(nalu) > 2 && nalu[2]&0x80 != 0
	}
	return h264.IsVCL(nalu) && len(nalu) > 1 && nalu[1]&0x80 != 0
}

func hasVCL(codec media.Codec, au [][]byte) bool {
	for _, n := range au {
		if codec == media.CodecH265 && h265.IsVCL(n) || codec == media.CodecH264 && h264.IsVCL(n) {
			return true
		}
	}
	return false
}

func (c *clip) noteParam(nalu []byte) {
	if c.codec == media.CodecH265 {
		switch h265.Type(nalu) {
		case h265.NALVPS:
			c.params.VPS = nalu
		case h265.NALSPS:
			c.params.SPS = nalu
		case h265.NALPPS:
			c.params.PPS = nalu
		}
		return
	}
	switch h264.Type(nalu) {
	case h264.NALSPS:
		c.params.SPS = nalu
	case h264.NALPPS:
		c.params.PPS = nalu
	}
}

func (c *clip) addFrame(au [][]byte) {
	fr := clipFrame{}
	for _, n := range au {
		if c.codec == media.CodecH265 {
			fr.key = fr.key || h265.IsKey(n)
		} else {
			fr.key = fr.key || h264.IsKey(n)
		}
	}
	emit := func(payload []byte, marker bool) {
		pkt := make([]byte, 12+len(payload))
		pkt[0] = 0x80
		pkt[1] = 96
		if marker {
			pkt[1] |= 0x80
		}
		copy(pkt[12:], payload)
		fr.packets = append(fr.packets, pkt)
		c.bytes += len(payload)
	}
	if c.codec == media.CodecH265 {
		rtph265.Packetize(au, payloadMTU, emit)
	} else {
		rtph264.Packetize(au, payloadMTU, emit)
	}
	c.frames = append(c.frames, fr)
}

// describe fills in the SDP media section and the picture size.
func (c *clip) describe() error {
	b64 := base64.StdEncoding.EncodeToString
	var sb strings.Builder
	sb.WriteString("m=video 0 RTP/AVP 96\r\n")
	if c.codec == media.CodecH265 {
		sps, err := h265.ParseSPS(c.params.SPS)
		if err != nil {
			return err
		}
		c.width, c.height = sps.Width, sps.Height
		sb.WriteString("a=rtpmap:96 H265/90000\r\n")
		fmt.Fprintf(&sb, "a=fmtp:96 sprop-vps=%s;sprop-sps=%s;sprop-pps=%s\r\n",
			b64(c.params.VPS), b64(c.params.SPS), b64(c.params.PPS))
	} else {
		sps, err := h264.ParseSPS(c.params.SPS)
		if err != nil {
			return err
		}
		c.width, c.height = sps.Width, sps.Height
		sb.WriteString("a=rtpmap:96 H264/90000\r\n")
		fmt.Fprintf(&sb, "a=fmtp:96 packetization-mode=1;profile-level-id=%s;sprop-parameter-sets=%s,%s\r\n",
			hex.EncodeToString(c.params.SPS[1:4]), b64(c.params.SPS), b64(c.params.PPS))
	}
	fmt.Fprintf(&sb, "a=framerate:%d\r\n", FixtureFPS)
	c.sdp = sb.String()
	return nil
}

// stamp writes sequence number and timestamp into an RTP header.
func stamp(pkt []byte, seq uint16, ts uint32) {
	binary.BigEndian.PutUint16(pkt[2:4], seq)
	binary.BigEndian.PutUint32(pkt[4:8], ts)
}
