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

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	raw "google.golang.org/api/storage/v1"

	"github.com/leptonml/lepton/internal/gcsjson"
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
		// An emulator (fake-gcs-server) takes no credentials; reads use
		// the JSON API, which it speaks on any host.
		opts = append(opts, option.WithEndpoint(ep), option.WithoutAuthentication())
	} else if c := s["credentials"]; c != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, c))
	}
	c, err := gcsjson.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("gcs backend: %w", err)
	}
	name := stateName
	if p := s["prefix"]; p != "" {
		name = path.Join(p, stateName)
	}
	return remote.New(&store{c: c, bucket: s["bucket"], name: name}), nil
}

type store struct {
	c            *gcsjson.Client
	bucket, name string
}

func (s *store) lockName() string   { return s.name + ".tflock" }
func (s *store) backupName() string { return s.name + ".backup" }

func (s *store) String() string { return "gs://" + s.bucket + "/" + s.name }

func (s *store) Get(ctx context.Context) ([]byte, error) {
	b, _, err := s.read(ctx, s.name, nil)
	return b, err
}

// read returns an object's content and generation, or nil when it does not
// exist; gen, when not nil, must be the object's generation.
func (s *store) read(ctx context.Context, name string, gen *int64) ([]byte, int64, error) {
	call := s.c.Objects.Get(s.bucket, name).Projection("full")
	if gen != nil {
		call.IfGenerationMatch(*gen)
	}
	r, g, err := s.c.Download(ctx, call)
	if gcsjson.NotFound(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return b, g, err
}

func (s *store) Stat(ctx context.Context) (*state.Meta, string, error) {
	var a *raw.Object
	err := gcsjson.Retry(ctx, func() error {
		var err error
		a, err = s.c.Objects.Get(s.bucket, s.name).Projection("full").Context(ctx).Do()
		return err
	})
	if gcsjson.NotFound(err) {
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
	b, g, err := s.read(ctx, s.name, &a.Generation)
	if err != nil || b == nil {
		return nil, "", err
	}
	m, err := state.ReadMeta(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	return &m, strconv.FormatInt(g, 10), nil
}

// generation is the precondition for writing over version ("": nothing
// stored, which is generation 0).
func generation(version string) (int64, error) {
	if version == "" {
		return 0, nil
	}
	return strconv.ParseInt(version, 10, 64)
}

func (s *store) Put(ctx context.Context, b []byte, m state.Meta, version string) error {
	g, err := generation(version)
	if err != nil {
		return err
	}
	return s.write(ctx, s.name, g, b, map[string]string{metaLineage: m.Lineage, metaSerial: strconv.FormatUint(m.Serial, 10)})
}

// write uploads b in one request (a state is small enough: the object
// appears whole or not at all) if the object's generation is gen (0: it
// does not exist), mapping a failed precondition to remote.ErrConflict.
// With a precondition the upload may be repeated, so transient errors are
// retried, as the storage package does.
func (s *store) write(ctx context.Context, name string, gen int64, b []byte, md map[string]string) error {
	return conflict(gcsjson.Retry(ctx, func() error {
		_, err := s.c.Objects.Insert(s.bucket, &raw.Object{Name: name, ContentType: "application/json", Metadata: md}).
			IfGenerationMatch(gen).Media(bytes.NewReader(b), googleapi.ChunkSize(0), googleapi.ContentType("application/json")).Context(ctx).Do()
		return err
	}))
}

func conflict(err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == http.StatusPreconditionFailed {
		return remote.ErrConflict
	}
	return err
}

func (s *store) Backup(ctx context.Context, version string) error {
	g, err := generation(version)
	if err != nil {
		return err
	}
	// A rewrite copies the state with its metadata, in as many calls as the
	// service asks for.
	call := s.c.Objects.Rewrite(s.bucket, s.name, s.bucket, s.backupName(), &raw.Object{}).IfSourceGenerationMatch(g).Projection("full")
	for {
		res, err := call.Context(ctx).Do()
		if err != nil {
			return err
		}
		if res.Done {
			return nil
		}
		call.RewriteToken(res.RewriteToken)
	}
}

func (s *store) TryLock(ctx context.Context, info state.LockInfo) (*state.LockInfo, error) {
	b, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	for {
		err := s.write(ctx, s.lockName(), 0, b, nil)
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
	b, gen, err := s.read(ctx, s.lockName(), nil)
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
	// Only the lock that was read: not one taken since by someone else (a
	// delete with a generation may be repeated).
	return gcsjson.Retry(ctx, func() error {
		return s.c.Objects.Delete(s.bucket, s.lockName()).IfGenerationMatch(gen).Context(ctx).Do()
	})
}
