package source

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// inlineReader serves column-oriented inline data, columns in name order
// (the HCL object gives no order a user could rely on).
type inlineReader struct {
	cols   []string
	data   [][]any
	n, row int
	vals   []Value
	digest string
}

func openInline(m map[string][]any) (Reader, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("inline: %w: no columns", ErrEmpty)
	}
	r := &inlineReader{n: -1}
	for k := range m {
		r.cols = append(r.cols, k)
	}
	sort.Strings(r.cols)
	for _, k := range r.cols {
		if r.n >= 0 && len(m[k]) != r.n {
			return nil, fmt.Errorf("inline: column %q has %d values but column %q has %d; every column needs the same length", k, len(m[k]), r.cols[0], r.n)
		}
		r.n = len(m[k])
		r.data = append(r.data, m[k])
	}
	d, err := fingerprintInline(m)
	if err != nil {
		return nil, err
	}
	r.digest = d
	r.vals = make([]Value, len(r.cols))
	return r, nil
}

func (r *inlineReader) Columns() []string { return r.cols }

func (r *inlineReader) Next() ([]Value, Position, error) {
	if r.row >= r.n {
		return nil, Position{}, io.EOF
	}
	pos := Position{"inline", "row", int64(r.row + 1)}
	for i, col := range r.data {
		v, err := goValue(col[r.row])
		if err != nil {
			return nil, pos, &Error{Pos: pos, Column: r.cols[i], Err: err}
		}
		r.vals[i] = v
	}
	r.row++
	return r.vals, pos, nil
}

// goValue converts a decoded Go value (from HCL, JSON or SQL) into a Value.
func goValue(v any) (Value, error) {
	switch x := v.(type) {
	case nil:
		return Value{}, nil
	case float64:
		return Value{Kind: Number, Num: x}, nil
	case float32:
		return Value{Kind: Number, Num: float64(x)}, nil
	case int:
		return Value{Kind: Number, Num: float64(x)}, nil
	case int32:
		return Value{Kind: Number, Num: float64(x)}, nil
	case int64:
		return Value{Kind: Number, Num: float64(x)}, nil
	case string:
		return Value{Kind: String, Str: x}, nil
	case bool:
		if x {
			return Value{Kind: Bool, Num: 1}, nil
		}
		return Value{Kind: Bool}, nil
	}
	return Value{}, fmt.Errorf("unsupported value %v of type %T (want a number, string, bool or null)", v, v)
}

func (r *inlineReader) Digest() (string, error) { return r.digest, nil }
func (r *inlineReader) Close() error            { return nil }

func fingerprintInline(m map[string][]any) (string, error) {
	b, err := json.Marshal(m) // map keys are sorted: canonical
	if err != nil {
		return "", fmt.Errorf("inline: %w", err)
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}
