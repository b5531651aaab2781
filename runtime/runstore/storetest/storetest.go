// Package storetest is the conformance suite of runstore.Store: every
// implementation (the local directory, an object store) runs it.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"

	"github.com/leptonml/lepton/runtime/runstore"
)

// step is one operation on the store and what it must give.
type step struct {
	op   string // put, get, stat, list, delete, deleteprefix, append
	key  string // the key, or the prefix for list and deleteprefix
	data string // put and append: the bytes written

	want     string   // get: the content; stat: the size as a decimal
	wantKeys []string // list: the keys, in order
	notExist bool     // the error wraps fs.ErrNotExist
	invalid  bool     // the error wraps runstore.ErrInvalidKey
}

var cases = []struct {
	name  string
	steps []step
}{
	{"put then get", []step{
		{op: "put", key: "artifacts/sha256-ab.lmodel", data: "model"},
		{op: "get", key: "artifacts/sha256-ab.lmodel", want: "model"},
		{op: "stat", key: "artifacts/sha256-ab.lmodel", want: "5"},
	}},
	{"put replaces", []step{
		{op: "put", key: "runs/r/spec.sha256", data: "first, longer"},
		{op: "put", key: "runs/r/spec.sha256", data: "second"},
		{op: "get", key: "runs/r/spec.sha256", want: "second"},
		{op: "list", key: "runs/", wantKeys: []string{"runs/r/spec.sha256"}},
	}},
	{"empty object", []step{
		{op: "put", key: "a/empty", data: ""},
		{op: "get", key: "a/empty", want: ""},
		{op: "stat", key: "a/empty", want: "0"},
	}},
	{"missing", []step{
		{op: "get", key: "runs/none/train.log", notExist: true},
		{op: "stat", key: "runs/none/train.log", notExist: true},
		{op: "delete", key: "runs/none/train.log"},
		{op: "list", key: "runs/none/", wantKeys: nil},
	}},
	{"a prefix is not an object", []step{
		{op: "put", key: "runs/r/train.log", data: "x"},
		{op: "get", key: "runs/r", notExist: true},
		{op: "stat", key: "runs", notExist: true},
	}},
	{"delete", []step{
		{op: "put", key: "datasets/1.txt", data: "report"},
		{op: "delete", key: "datasets/1.txt"},
		{op: "get", key: "datasets/1.txt", notExist: true},
		{op: "list", key: "", wantKeys: nil},
	}},
	{"list by prefix", []step{
		{op: "put", key: "runs/b/train.log", data: "1"},
		{op: "put", key: "runs/a/checkpoint.gob", data: "22"},
		{op: "put", key: "runs/a/train.log", data: "333"},
		{op: "put", key: "runs/ab/train.log", data: "4"},
		{op: "put", key: "datasets/x.bin", data: "5"},
		{op: "list", key: "runs/a/", wantKeys: []string{"runs/a/checkpoint.gob", "runs/a/train.log"}},
		{op: "list", key: "runs/a", wantKeys: []string{"runs/a/checkpoint.gob", "runs/a/train.log", "runs/ab/train.log"}},
		{op: "list", key: "runs/", wantKeys: []string{"runs/a/checkpoint.gob", "runs/a/train.log", "runs/ab/train.log", "runs/b/train.log"}},
		{op: "list", key: "", wantKeys: []string{"datasets/x.bin", "runs/a/checkpoint.gob", "runs/a/train.log", "runs/ab/train.log", "runs/b/train.log"}},
		{op: "list", key: "runs/c/", wantKeys: nil},
	}},
	{"delete prefix", []step{
		{op: "put", key: "runs/a/checkpoint.gob", data: "1"},
		{op: "put", key: "runs/a/sub/x", data: "2"},
		{op: "put", key: "runs/ab/train.log", data: "3"},
		{op: "deleteprefix", key: "runs/a/"},
		{op: "list", key: "runs/", wantKeys: []string{"runs/ab/train.log"}},
		{op: "deleteprefix", key: "runs/nothing/"},
	}},
	{"append", []step{
		{op: "append", key: "runs/r/train.log", data: "epoch 1\n"},
		{op: "append", key: "runs/r/train.log", data: "epoch 2\n"},
		{op: "get", key: "runs/r/train.log", want: "epoch 1\nepoch 2\n"},
		{op: "stat", key: "runs/r/train.log", want: "16"},
	}},
	{"append after put", []step{
		{op: "put", key: "l", data: "a"},
		{op: "append", key: "l", data: "b"},
		{op: "get", key: "l", want: "ab"},
	}},
	{"invalid keys", []step{
		{op: "put", key: "", data: "x", invalid: true},
		{op: "put", key: "/abs", data: "x", invalid: true},
		{op: "put", key: "a/../b", data: "x", invalid: true},
		{op: "put", key: "a//b", data: "x", invalid: true},
		{op: "put", key: "a/", data: "x", invalid: true},
		{op: "put", key: "./a", data: "x", invalid: true},
		{op: "put", key: ".hidden", data: "x", invalid: true},
		{op: "put", key: `a\b`, data: "x", invalid: true},
		{op: "get", key: "../outside", invalid: true},
		{op: "stat", key: "..", invalid: true},
		{op: "delete", key: "a/./b", invalid: true},
		{op: "append", key: "a/../../b", invalid: true},
		{op: "list", key: "../", invalid: true},
		{op: "deleteprefix", key: "/", invalid: true},
		{op: "list", key: "", wantKeys: nil},
	}},
}

// Run runs the suite; open returns a new, empty store for each case.
func Run(t *testing.T, open func(t *testing.T) runstore.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			for i, st := range tc.steps {
				if err := do(s, st); err != nil {
					t.Fatalf("step %d (%s %q): %v", i+1, st.op, st.key, err)
				}
			}
		})
	}
	t.Run("sub", func(t *testing.T) { testSub(t, open(t)) })
	t.Run("missing is a PathError naming where", func(t *testing.T) {
		s := open(t)
		_, err := s.Get(context.Background(), "runs/x/train.log")
		var pe *fs.PathError
		if !errors.As(err, &pe) || pe.Path != s.Where("runs/x/train.log") {
			t.Fatalf("Get of a missing key: %v; want a *fs.PathError with Path %q", err, s.Where("runs/x/train.log"))
		}
	})
	t.Run("readers see whole objects", func(t *testing.T) { testWhole(t, open(t)) })
	t.Run("cancelled put leaves the old object", func(t *testing.T) {
		s := open(t)
		ctx := context.Background()
		if err := runstore.PutBytes(ctx, s, "k", []byte("old")); err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		r := io.MultiReader(strings.NewReader("new, part"), readerFunc(func([]byte) (int, error) {
			cancel()
			return 0, cctx.Err()
		}))
		if err := s.Put(cctx, "k", r); err == nil {
			t.Fatal("Put of a failing reader succeeded")
		}
		if b, err := runstore.ReadAll(ctx, s, "k"); err != nil || string(b) != "old" {
			t.Fatalf("after a failed Put: %q, %v; want the old object", b, err)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func do(s runstore.Store, st step) error {
	ctx := context.Background()
	var err error
	var got string
	var keys []string
	switch st.op {
	case "put":
		err = s.Put(ctx, st.key, strings.NewReader(st.data))
	case "get":
		var b []byte
		b, err = runstore.ReadAll(ctx, s, st.key)
		got = string(b)
	case "stat":
		var in runstore.Info
		in, err = s.Stat(ctx, st.key)
		if err == nil && in.Key != st.key {
			return fmt.Errorf("Info.Key %q", in.Key)
		}
		got = fmt.Sprint(in.Size)
	case "list":
		var infos []runstore.Info
		infos, err = s.List(ctx, st.key)
		for _, in := range infos {
			keys = append(keys, in.Key)
		}
	case "delete":
		err = s.Delete(ctx, st.key)
	case "deleteprefix":
		err = runstore.DeletePrefix(ctx, s, st.key)
	case "append":
		var w io.WriteCloser
		if w, err = s.Append(ctx, st.key); err == nil {
			_, err = io.WriteString(w, st.data)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
	default:
		return fmt.Errorf("unknown op %q", st.op)
	}
	switch {
	case st.notExist:
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("error %v, want one wrapping fs.ErrNotExist", err)
		}
		return nil
	case st.invalid:
		if !errors.Is(err, runstore.ErrInvalidKey) {
			return fmt.Errorf("error %v, want one wrapping runstore.ErrInvalidKey", err)
		}
		return nil
	case err != nil:
		return err
	}
	if (st.op == "get" || st.op == "stat") && got != st.want {
		return fmt.Errorf("got %q, want %q", got, st.want)
	}
	if st.op == "list" && fmt.Sprint(keys) != fmt.Sprint(st.wantKeys) {
		return fmt.Errorf("keys %q, want %q", keys, st.wantKeys)
	}
	return nil
}

// testSub: a Sub store sees and writes its part of the parent alone.
func testSub(t *testing.T, s runstore.Store) {
	ctx := context.Background()
	sub := runstore.Sub(s, "runs/r")
	for _, st := range []step{
		{op: "put", key: "checkpoint.gob", data: "cp"},
		{op: "append", key: "train.log", data: "line\n"},
		{op: "get", key: "train.log", want: "line\n"},
		{op: "stat", key: "checkpoint.gob", want: "2"},
		{op: "list", key: "", wantKeys: []string{"checkpoint.gob", "train.log"}},
		{op: "get", key: "../other", invalid: true},
	} {
		if err := do(sub, st); err != nil {
			t.Fatalf("sub %s %q: %v", st.op, st.key, err)
		}
	}
	if err := runstore.PutBytes(ctx, s, "runs/other/train.log", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := do(s, step{op: "get", key: "runs/r/checkpoint.gob", want: "cp"}); err != nil {
		t.Fatalf("parent: %v", err)
	}
	if sub.Where("train.log") != s.Where("runs/r/train.log") {
		t.Errorf("sub Where %q, parent %q", sub.Where("train.log"), s.Where("runs/r/train.log"))
	}
	if err := runstore.DeletePrefix(ctx, sub, ""); err != nil {
		t.Fatal(err)
	}
	if err := do(s, step{op: "list", key: "", wantKeys: []string{"runs/other/train.log"}}); err != nil {
		t.Fatalf("after deleting the sub store's objects: %v", err)
	}
}

// testWhole: while one writer replaces an object again and again, readers
// only ever see one of the versions written, whole.
func testWhole(t *testing.T, s runstore.Store) {
	ctx := context.Background()
	versions := make([][]byte, 8)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
	}
	if err := runstore.PutBytes(ctx, s, "obj", versions[0]); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for n := 0; n < 40; n++ {
			if err := runstore.PutBytes(ctx, s, "obj", versions[n%len(versions)]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	reads := 0
	for {
		select {
		case <-done:
			wg.Wait()
			if reads == 0 {
				t.Error("no read ran while writing")
			}
			return
		default:
		}
		b, err := runstore.ReadAll(ctx, s, "obj")
		if err != nil {
			t.Fatal(err)
		}
		reads++
		i := len(b) - 64<<10
		if i < 0 || i >= len(versions) || !bytes.Equal(b, versions[i]) {
			t.Fatalf("read a torn object of %d bytes", len(b))
		}
	}
}
