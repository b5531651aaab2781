package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
)

// objectRow turns decoded JSON objects into rows over a growing column list;
// keys first seen in the same object are added in sorted order so that the
// column order does not depend on map iteration.
type objectRow struct {
	cols  []string
	index map[string]int
	vals  []Value
	fresh []string
}

func (o *objectRow) set(m map[string]any, pos Position) ([]Value, error) {
	o.fresh = o.fresh[:0]
	for k := range m {
		if _, ok := o.index[k]; !ok {
			o.fresh = append(o.fresh, k)
		}
	}
	if len(o.fresh) > 0 {
		sort.Strings(o.fresh)
		for _, k := range o.fresh {
			o.index[k] = len(o.cols)
			o.cols = append(o.cols, k)
		}
	}
	if cap(o.vals) < len(o.cols) {
		o.vals = make([]Value, len(o.cols), 2*len(o.cols))
	}
	o.vals = o.vals[:len(o.cols)]
	clear(o.vals)
	for k, v := range m {
		val, err := jsonValue(v)
		if err != nil {
			return nil, &Error{Pos: pos, Column: k, Err: err}
		}
		o.vals[o.index[k]] = val
	}
	return o.vals, nil
}

func jsonValue(v any) (Value, error) {
	switch x := v.(type) {
	case nil:
		return Value{}, nil
	case float64:
		return Value{Kind: Number, Num: x}, nil
	case json.Number:
		f, ok := ParseNumber([]byte(x))
		if !ok {
			return Value{}, fmt.Errorf("number %s is out of range", x)
		}
		return Value{Kind: Number, Num: f}, nil
	case string:
		return Value{Kind: String, Str: x}, nil
	case bool:
		if x {
			return Value{Kind: Bool, Num: 1}, nil
		}
		return Value{Kind: Bool}, nil
	}
	return Value{}, fmt.Errorf("nested %T values are not supported (flatten the record)", v)
}

type jsonlReader struct {
	objectRow
	name string
	br   *bufio.Reader
	line int64
	buf  []byte
}

func newJSONLReader(r io.Reader, name string) *jsonlReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<20)
	}
	return &jsonlReader{objectRow: objectRow{index: map[string]int{}}, name: name, br: br}
}

func (j *jsonlReader) Columns() []string { return j.cols }

func (j *jsonlReader) Next() ([]Value, Position, error) {
	for {
		line, err := j.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			j.buf = append(j.buf[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = j.br.ReadSlice('\n')
				j.buf = append(j.buf, line...)
			}
			line = j.buf
		}
		if err == io.EOF && len(line) > 0 {
			err = nil
		}
		if err == io.EOF {
			return nil, Position{}, io.EOF
		}
		if err != nil {
			return nil, Position{}, fmt.Errorf("%s line %d: %w", j.name, j.line+1, err)
		}
		j.line++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		pos := Position{j.name, "line", j.line}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("malformed JSON line: %v", err)}
		}
		if m == nil {
			return nil, pos, &Error{Pos: pos, Err: errors.New("malformed JSON line: expected an object, got null")}
		}
		vals, err := j.set(m, pos)
		return vals, pos, err
	}
}

func (j *jsonlReader) Digest() (string, error) {
	return "", errors.New("jsonl: the digest is computed by the enclosing reader")
}
func (j *jsonlReader) Close() error { return nil }

// jsonReader streams the elements of a top-level JSON array of objects.
type jsonReader struct {
	objectRow
	name string
	dec  *json.Decoder
	n    int64
	done bool
}

func newJSONReader(r io.Reader, name string) (*jsonReader, error) {
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err == io.EOF {
		return nil, fmt.Errorf("%s: %w: the file is empty (expected a JSON array of objects)", name, ErrEmpty)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %v", name, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("%s: expected a JSON array of objects, found %v", name, tok)
	}
	return &jsonReader{objectRow: objectRow{index: map[string]int{}}, name: name, dec: dec}, nil
}

func (j *jsonReader) Columns() []string { return j.cols }

func (j *jsonReader) Next() ([]Value, Position, error) {
	if j.done {
		return nil, Position{}, io.EOF
	}
	if !j.dec.More() {
		if _, err := j.dec.Token(); err != nil {
			return nil, Position{}, fmt.Errorf("%s: malformed JSON at the end of the array: %v", j.name, err)
		}
		j.done = true
		return nil, Position{}, io.EOF
	}
	j.n++
	pos := Position{j.name, "record", j.n}
	var raw any
	if err := j.dec.Decode(&raw); err != nil {
		return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("malformed JSON (byte %d): %v", j.dec.InputOffset(), err)}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, pos, &Error{Pos: pos, Err: fmt.Errorf("expected an object, got %s", jsonType(raw))}
	}
	vals, err := j.set(m, pos)
	return vals, pos, err
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func (j *jsonReader) Digest() (string, error) {
	return "", errors.New("json: the digest is computed by the enclosing reader")
}
func (j *jsonReader) Close() error { return nil }
