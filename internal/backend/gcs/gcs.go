// Package gcs keeps lepton's state in a Google Cloud Storage object, as
// Terraform's gcs backend: the lock is an object "<state>.tflock" created
// with a DoesNotExist precondition, and state writes carry a generation
// precondition (the generation that was checked). Credentials are
// Application Default Credentials, or a service-account key file named by
// the credentials setting.
package gcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
)

// Keys are the settings the gcs backend takes.
var (
	Required = []string{"bucket"}
	Optional = []string{"prefix", "credentials", "storage_custom_endpoint"}
)

const (
	metaLineage = "lepton-lineage"
	metaSerial  = "lepton-serial"
	// stateName is the state object's name under prefix.
	stateName = "lepton.state.json"
)

// New returns the gcs backend for settings.
func New(ctx context.Context, s remote.Settings) (state.Backend, error) {
	if err := s.Check("gcs", Required, Optional...); err != nil {
		return nil, err
	}
	var opts []option.ClientOption
	if ep := s["storage_custom_endpoint"]; ep != "" {
		// An emulator (fake-gcs-server) takes no credentials, and speaks the
		// JSON API only.
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication(), storage.WithJSONReads())
	} else if c := s["credentials"]; c != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, c))
	}
	c, err := storage.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs backend: %w", err)
	}
	name := stateName
	if p := s["prefix"]; p != "" {
		name = path.Join(p, stateName)
	}
	b := c.Bucket(s["bucket"])
	return remote.New(&store{bucket: s["bucket"], name: name, obj: b.Object(name), lock: b.Object(name + ".tflock"), backup: b.Object(name + ".backup")}), nil
}

type store struct {
	bucket, name      string
	obj, lock, backup *storage.ObjectHandle
}

func (s *store) String() string { return "gs://" + s.bucket + "/" + s.name }

func (s *store) Get(ctx context.Context) ([]byte, error) {
	b, _, err := read(ctx, s.obj)
	return b, err
}

// read returns an object's content and generation, or nil when it does not exist.
func read(ctx context.Context, o *storage.ObjectHandle) ([]byte, int64, error) {
	r, err := o.NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return b, r.Attrs.Generation, err
}

func (s *store) Stat(ctx context.Context) (*state.Meta, string, error) {
	a, err := s.obj.Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	gen := strconv.FormatInt(a.Generation, 10)
	serial, perr := strconv.ParseUint(a.Metadata[metaSerial], 10, 64)
	if lin := a.Metadata[metaLineage]; lin != "" && perr == nil {
		return &state.Meta{Lineage: lin, Serial: serial}, gen, nil
	}
	b, g, err := read(ctx, s.obj.If(storage.Conditions{GenerationMatch: a.Generation}))
	if err != nil || b == nil {
		return nil, "", err
	}
	m, err := state.ReadMeta(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	return &m, strconv.FormatInt(g, 10), nil
}

// conds is the precondition for writing over version ("": nothing stored).
func conds(version string) (storage.Conditions, error) {
	if version == "" {
		return storage.Conditions{DoesNotExist: true}, nil
	}
	g, err := strconv.ParseInt(version, 10, 64)
	return storage.Conditions{GenerationMatch: g}, err
}

func (s *store) Put(ctx context.Context, b []byte, m state.Meta, version string) error {
	c, err := conds(version)
	if err != nil {
		return err
	}
	return write(ctx, s.obj.If(c), b, map[string]string{metaLineage: m.Lineage, metaSerial: strconv.FormatUint(m.Serial, 10)})
}

// write uploads b in one request (a state is small enough), mapping a failed
// precondition to remote.ErrConflict.
func write(ctx context.Context, o *storage.ObjectHandle, b []byte, md map[string]string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // an unfinished Writer is abandoned, not committed
	w := o.NewWriter(ctx)
	w.ContentType = "application/json"
	w.Metadata = md
	w.ChunkSize = 0 // a single request: the object appears whole or not at all
	if _, err := w.Write(b); err != nil {
		w.Close()
		return conflict(err)
	}
	return conflict(w.Close())
}

func conflict(err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
		return remote.ErrConflict
	}
	return err
}

func (s *store) Backup(ctx context.Context, version string) error {
	c, err := conds(version)
	if err != nil {
		return err
	}
	_, err = s.backup.CopierFrom(s.obj.If(c)).Run(ctx)
	return err
}

func (s *store) TryLock(ctx context.Context, info state.LockInfo) (*state.LockInfo, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	for {
		err := write(ctx, s.lock.If(storage.Conditions{DoesNotExist: true}), b, nil)
		if err == nil {
			return nil, nil
		}
		if !errors.Is(err, remote.ErrConflict) {
			return nil, err
		}
		holder, _, err := s.readLock(ctx)
		if err != nil {
			return nil, err
		}
		if holder != nil {
			return holder, nil
		}
	}
}

func (s *store) readLock(ctx context.Context) (*state.LockInfo, int64, error) {
	b, gen, err := read(ctx, s.lock)
	if err != nil || b == nil {
		return nil, 0, err
	}
	var info state.LockInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, 0, fmt.Errorf("the lock object %s.tflock is not lepton's: %w", s.name, err)
	}
	return &info, gen, nil
}

func (s *store) Unlock(ctx context.Context, info state.LockInfo) error {
	return s.ForceUnlock(ctx, info.ID)
}

func (s *store) ForceUnlock(ctx context.Context, id string) error {
	holder, gen, err := s.readLock(ctx)
	if err != nil {
		return err
	}
	if holder == nil {
		return remote.ErrNotLocked
	}
	if holder.ID != id {
		return remote.Mismatch(id, holder.ID)
	}
	// Only the lock that was read: not one taken since by someone else.
	return s.lock.If(storage.Conditions{GenerationMatch: gen}).Delete(ctx)
}
