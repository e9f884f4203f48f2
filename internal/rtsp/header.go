package rtsp

import "strings"

// Field is one header line: its name as written and its value with the
// surrounding whitespace removed.
type Field struct {
	Name  string
	Value string
}

// Header is an ordered list of RTSP header fields. Names keep the case they
// were written in (cameras and servers see exactly what we send), while
// lookups are case-insensitive. The zero value (nil) is an empty header.
// A Header is not safe for concurrent mutation.
type Header []Field

// Get returns the value of the first field named name, or "" if there is
// none.
func (h Header) Get(name string) string {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Has reports whether a field named name is present.
func (h Header) Has(name string) bool {
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Values returns the values of all fields named name, in order (nil if
// none). Several WWW-Authenticate fields are the common case.
func (h Header) Values(name string) []string {
	var out []string
	for _, f := range h {
		if strings.EqualFold(f.Name, name) {
			out = append(out, f.Value)
		}
	}
	return out
}

// Set replaces the first field named name with value (keeping its position)
// and removes any others with that name; it appends a field when there is
// none.
func (h *Header) Set(name, value string) {
	found := false
	out := (*h)[:0]
	for _, f := range *h {
		if strings.EqualFold(f.Name, name) {
			if found {
				continue
			}
			found = true
			f = Field{Name: name, Value: value}
		}
		out = append(out, f)
	}
	if !found {
		out = append(out, Field{Name: name, Value: value})
	}
	*h = out
}

// Add appends a field, keeping any existing ones with the same name.
func (h *Header) Add(name, value string) {
	*h = append(*h, Field{Name: name, Value: value})
}

// Del removes every field named name.
func (h *Header) Del(name string) {
	out := (*h)[:0]
	for _, f := range *h {
		if !strings.EqualFold(f.Name, name) {
			out = append(out, f)
		}
	}
	*h = out
}

// Clone returns a copy that shares nothing with h.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	return append(Header(nil), h...)
}

// appendTo writes the fields as "Name: Value\r\n" lines, skipping
// Content-Length (the message writes its own). CR and LF inside names or
// values are replaced by spaces so a value can never inject a header.
func (h Header) appendTo(dst []byte) []byte {
	for _, f := range h {
		if strings.EqualFold(f.Name, "Content-Length") {
			continue
		}
		dst = appendClean(dst, f.Name)
		dst = append(dst, ": "...)
		dst = appendClean(dst, f.Value)
		dst = append(dst, "\r\n"...)
	}
	return dst
}

func appendClean(dst []byte, s string) []byte {
	if !strings.ContainsAny(s, "\r\n") {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}
