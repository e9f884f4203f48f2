package integrity

import (
	"fmt"
	"io"
)

// HasManifest reports whether a file of size bytes read through r has a
// manifest box (a top-level uuid box with user type ManifestUUID) among
// the top-level boxes that can be walked from its start, stopping at the
// first malformed box header. A file without one is not an evidence
// export (a plain MP4 export, or not MP4 at all) and cannot be verified.
// It reads only box headers; read errors are returned.
func HasManifest(r io.ReaderAt, size int64) (bool, error) {
	for off := int64(0); off < size; {
		h, err := readBoxHeader(r, off, size)
		if err != nil {
			if _, ok := err.(readError); ok {
				return false, err
			}
			return false, nil
		}
		if h.typ == "uuid" && h.user == ManifestUUID {
			return true, nil
		}
		off += h.size
	}
	return false, nil
}

// CheckExportLayout walks the top-level boxes of an evidence export and
// refuses every box the exporter does not write, so that nothing rides
// along unverified: the file must be exactly one ftyp, one moov, the
// manifest box, then one or more fragments (moof and mdat pairs), in that
// order. The error names the first box out of place and its offset. It
// reads only box headers; read errors are returned as they are.
func CheckExportLayout(r io.ReaderAt, size int64) error {
	want := []string{"ftyp", "moov", "manifest"}
	frags, moof := 0, false
	for off := int64(0); off < size; {
		h, err := readBoxHeader(r, off, size)
		if err != nil {
			return err
		}
		name := h.typ
		if h.typ == "uuid" && h.user == ManifestUUID {
			name = "manifest"
		}
		switch {
		case len(want) > 0:
			if name != want[0] {
				return fmt.Errorf("top-level box %s at offset %d where the exporter writes %s: an evidence export holds only ftyp, moov, the manifest, then moof and mdat fragments (box added or moved)",
					layoutName(h), off, want[0])
			}
			want = want[1:]
		case moof:
			if name != "mdat" {
				return fmt.Errorf("moof box at offset %d is followed by %s, not mdat", off, layoutName(h))
			}
			moof = false
			frags++
		case name == "moof":
			moof = true
		default:
			return fmt.Errorf("top-level box %s at offset %d after the fragments began: an evidence export holds only ftyp, moov, the manifest, then moof and mdat fragments (box added)", layoutName(h), off)
		}
		off += h.size
	}
	switch {
	case len(want) > 0:
		return fmt.Errorf("the file ends before its %s box (file cut short?)", want[0])
	case moof:
		return fmt.Errorf("the last moof box is not followed by mdat (file cut short?)")
	case frags == 0:
		return fmt.Errorf("the file holds no fragments (file cut short?)")
	}
	return nil
}

// layoutName names a box for CheckExportLayout's messages.
func layoutName(h boxHeader) string {
	if h.typ == "uuid" && h.user != ManifestUUID {
		return fmt.Sprintf("uuid %x", h.user)
	}
	if h.typ == "uuid" {
		return "manifest"
	}
	return boxName(h.typ)
}
