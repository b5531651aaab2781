package artifact

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Magic opens every artifact file.
const Magic = "LEPTONMD"

// FormatVersion is the version this code writes and the only one it reads.
const FormatVersion = 1

const prefixLen = 16

// maxHeader bounds the JSON header so a corrupt length cannot make us allocate gigabytes.
const maxHeader = 64 << 20

// ErrDigestMismatch is wrapped when a file's bytes do not hash to its name.
var ErrDigestMismatch = errors.New("artifact digest mismatch")

// ErrVersion is wrapped when a file has a format version this build cannot read.
var ErrVersion = errors.New("unsupported artifact format version")

// header is what the JSON part holds: the model plus where each weight lives.
type header struct {
	*Model
	// Count of float32 values in the data section, for a length check.
	Values int `json:"values"`
}

// Encode serialises m. The output is deterministic: the same model gives the same bytes.
func Encode(m *Model) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	n := 0
	for _, w := range m.Weights {
		n += len(w.Data)
	}
	h, err := json.Marshal(header{Model: m, Values: n})
	if err != nil {
		return nil, fmt.Errorf("encode model header: %w", err)
	}
	buf := make([]byte, prefixLen+len(h)+4*n)
	copy(buf, Magic)
	binary.LittleEndian.PutUint16(buf[8:], FormatVersion)
	binary.LittleEndian.PutUint32(buf[12:], uint32(len(h)))
	copy(buf[prefixLen:], h)
	off := prefixLen + len(h)
	for _, w := range m.Weights {
		for _, v := range w.Data {
			binary.LittleEndian.PutUint32(buf[off:], math.Float32bits(v))
			off += 4
		}
	}
	return buf, nil
}

// Decode parses an artifact file; src names it in errors. It does not check a
// digest (Store.Get does); the returned model's Digest is that of b.
func Decode(b []byte, src string) (*Model, error) {
	if len(b) < prefixLen {
		return nil, fmt.Errorf("%s: %d bytes, too short for a lepton model file", src, len(b))
	}
	if !bytes.Equal(b[:8], []byte(Magic)) {
		return nil, fmt.Errorf("%s: not a lepton model file (magic %q, want %q)", src, b[:8], Magic)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != FormatVersion {
		return nil, fmt.Errorf("%s: %w %d (this lepton reads version %d; use the lepton that wrote it, or retrain)", src, ErrVersion, v, FormatVersion)
	}
	hl := binary.LittleEndian.Uint32(b[12:])
	if hl > maxHeader || int(hl) > len(b)-prefixLen {
		return nil, fmt.Errorf("%s: header length %d exceeds the file (%d bytes)", src, hl, len(b))
	}
	m := &Model{}
	h := header{Model: m}
	dec := json.NewDecoder(bytes.NewReader(b[prefixLen : prefixLen+int(hl)]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%s: header: %w", src, err)
	}
	data := b[prefixLen+int(hl):]
	if h.Values < 0 || len(data) != 4*h.Values {
		return nil, fmt.Errorf("%s: header announces %d weight values, file holds %d bytes of weights", src, h.Values, len(data))
	}
	total := 0
	for i, w := range m.Weights {
		n := 1
		for _, d := range w.Shape {
			if d < 0 || d > h.Values {
				return nil, fmt.Errorf("%s: weight %d (%s) has bad shape %v", src, i, w.Name, w.Shape)
			}
			n *= d
			if n > h.Values {
				return nil, fmt.Errorf("%s: weight %d (%s) shape %v exceeds the %d stored values", src, i, w.Name, w.Shape, h.Values)
			}
		}
		if total+n > h.Values {
			return nil, fmt.Errorf("%s: weights need more than the %d stored values", src, h.Values)
		}
		d := make([]float32, n)
		for j := range d {
			d[j] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*(total+j):]))
		}
		m.Weights[i].Data = d
		total += n
	}
	if total != h.Values {
		return nil, fmt.Errorf("%s: weights use %d of %d stored values", src, total, h.Values)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(m.Preprocessing) > 0 {
		if _, err := ParseNormalization(m.Preprocessing); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
	}
	m.digest = DigestOf(b)
	return m, nil
}

// DigestOf returns "sha256:<hex>" of b.
func DigestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
