package runstore

import (
	"context"
	"io"
	"strings"
)

// Sub is the part of s under prefix (which ends with a slash): key k of the
// result is key prefix+k of s. A run gets Sub(store, "runs/NAME/") and
// names its files checkpoint.gob and train.log.
func Sub(s Store, prefix string) Store {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if in, ok := s.(*sub); ok {
		return &sub{s: in.s, prefix: in.prefix + prefix}
	}
	return &sub{s: s, prefix: prefix}
}

type sub struct {
	s      Store
	prefix string
}

func (s *sub) Put(ctx context.Context, key string, r io.Reader) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return s.s.Put(ctx, s.prefix+key, r)
}

func (s *sub) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return s.s.Get(ctx, s.prefix+key)
}

func (s *sub) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	in, err := s.s.Stat(ctx, s.prefix+key)
	in.Key = strings.TrimPrefix(in.Key, s.prefix)
	return in, err
}

func (s *sub) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	infos, err := s.s.List(ctx, s.prefix+prefix)
	for i := range infos {
		infos[i].Key = strings.TrimPrefix(infos[i].Key, s.prefix)
	}
	return infos, err
}

func (s *sub) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return s.s.Delete(ctx, s.prefix+key)
}

func (s *sub) Append(ctx context.Context, key string) (io.WriteCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	return s.s.Append(ctx, s.prefix+key)
}

func (s *sub) Where(key string) string { return s.s.Where(s.prefix + key) }

func (s *sub) DeletePrefix(ctx context.Context, prefix string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	return DeletePrefix(ctx, s.s, s.prefix+prefix)
}
