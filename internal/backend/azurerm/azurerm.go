// Package azurerm keeps lepton's state in an Azure Storage blob, as
// Terraform's azurerm backend: the lock is an infinite lease (its lease ID is
// the lock ID) on a lock blob "<key>.tflock" that holds the lock information;
// state writes are conditional on the ETag that was checked, and the state
// from before each command is kept as a blob snapshot.
//
// Credentials come from the environment: ARM_ACCESS_KEY (the account key),
// or AZURE_STORAGE_CONNECTION_STRING, or else Azure's default credential
// chain (environment, workload or managed identity, az login).
package azurerm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/lease"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
)

// Keys are the settings the azurerm backend takes.
var (
	Required = []string{"storage_account_name", "container_name", "key"}
	Optional = []string{"endpoint", "use_azuread_auth", "resource_group_name"}
)

// Azure metadata names are C# identifiers, case-insensitive.
const (
	metaLineage = "leptonlineage"
	metaSerial  = "leptonserial"
)

// New returns the azurerm backend for settings.
func New(ctx context.Context, s remote.Settings) (state.Backend, error) {
	if err := s.Check("azurerm", Required, Optional...); err != nil {
		return nil, err
	}
	ad, err := s.Bool("use_azuread_auth", false)
	if err != nil {
		return nil, err
	}
	account, name := s["storage_account_name"], s["container_name"]
	svc := strings.TrimSuffix(s["endpoint"], "/")
	if svc == "" {
		svc = "https://" + account + ".blob.core.windows.net"
	}
	url := svc + "/" + name
	var c *container.Client
	switch {
	case !ad && os.Getenv("ARM_ACCESS_KEY") != "":
		cred, err := azblob.NewSharedKeyCredential(account, os.Getenv("ARM_ACCESS_KEY"))
		if err != nil {
			return nil, fmt.Errorf("azurerm backend: ARM_ACCESS_KEY: %w", err)
		}
		c, err = container.NewClientWithSharedKeyCredential(url, cred, nil)
		if err != nil {
			return nil, fmt.Errorf("azurerm backend: %w", err)
		}
	case !ad && os.Getenv("AZURE_STORAGE_CONNECTION_STRING") != "":
		c, err = container.NewClientFromConnectionString(os.Getenv("AZURE_STORAGE_CONNECTION_STRING"), name, nil)
		if err != nil {
			return nil, fmt.Errorf("azurerm backend: AZURE_STORAGE_CONNECTION_STRING: %w", err)
		}
	default:
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("azurerm backend: no credentials (set ARM_ACCESS_KEY, AZURE_STORAGE_CONNECTION_STRING, or sign in for Azure AD): %w", err)
		}
		c, err = container.NewClient(url, cred, nil)
		if err != nil {
			return nil, fmt.Errorf("azurerm backend: %w", err)
		}
	}
	key := s["key"]
	return remote.New(&store{where: "azurerm://" + account + "/" + name + "/" + key,
		blob: c.NewBlockBlobClient(key), lock: c.NewBlockBlobClient(key + ".tflock")}), nil
}

type store struct {
	where      string
	blob, lock *blockblob.Client
}

func (s *store) String() string { return s.where }

func (s *store) Get(ctx context.Context) ([]byte, error) {
	b, _, err := read(ctx, s.blob, nil)
	return b, err
}

// read returns a blob's content and ETag, or nil when it does not exist.
func read(ctx context.Context, b *blockblob.Client, o *blob.DownloadStreamOptions) ([]byte, string, error) {
	r, err := b.DownloadStream(ctx, o)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	etag := ""
	if r.ETag != nil {
		etag = string(*r.ETag)
	}
	return data, etag, err
}

func metadata(md map[string]*string, key string) string {
	for k, v := range md {
		if strings.EqualFold(k, key) && v != nil {
			return *v
		}
	}
	return ""
}

func (s *store) Stat(ctx context.Context) (*state.Meta, string, error) {
	p, err := s.blob.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	etag := string(*p.ETag)
	serial, perr := strconv.ParseUint(metadata(p.Metadata, metaSerial), 10, 64)
	if lin := metadata(p.Metadata, metaLineage); lin != "" && perr == nil {
		return &state.Meta{Lineage: lin, Serial: serial}, etag, nil
	}
	e := azcore.ETag(etag)
	b, etag, err := read(ctx, s.blob, &blob.DownloadStreamOptions{AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: &e}}})
	if err != nil || b == nil {
		return nil, "", err
	}
	m, err := state.ReadMeta(bytes.NewReader(b))
	if err != nil {
		return nil, "", err
	}
	return &m, etag, nil
}

func (s *store) Put(ctx context.Context, b []byte, m state.Meta, version string) error {
	mac := &blob.ModifiedAccessConditions{}
	if version == "" {
		mac.IfNoneMatch = to(azcore.ETagAny)
	} else {
		mac.IfMatch = to(azcore.ETag(version))
	}
	_, err := s.blob.Upload(ctx, nopCloser{bytes.NewReader(b)}, &blockblob.UploadOptions{
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: to("application/json")},
		Metadata:         map[string]*string{metaLineage: to(m.Lineage), metaSerial: to(strconv.FormatUint(m.Serial, 10))},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: mac},
	})
	if bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists, bloberror.TargetConditionNotMet) {
		return remote.ErrConflict
	}
	return err
}

func (s *store) Backup(ctx context.Context, version string) error {
	_, err := s.blob.CreateSnapshot(ctx, &blob.CreateSnapshotOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to(azcore.ETag(version))}}})
	if bloberror.HasCode(err, bloberror.ConditionNotMet) {
		return remote.ErrConflict
	}
	return err
}

func (s *store) TryLock(ctx context.Context, info state.LockInfo) (*state.LockInfo, error) {
	// The lock blob must exist to be leased; creating it is harmless when
	// it already does.
	_, err := s.lock.Upload(ctx, nopCloser{bytes.NewReader(nil)}, &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to(azcore.ETagAny)}}})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet, bloberror.LeaseIDMissing) {
		return nil, err
	}
	lc, err := lease.NewBlobClient(s.lock, &lease.BlobClientOptions{LeaseID: to(info.ID)})
	if err != nil {
		return nil, err
	}
	_, err = lc.AcquireLease(ctx, -1, nil)
	if bloberror.HasCode(err, bloberror.LeaseAlreadyPresent) {
		return s.holder(ctx)
	}
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(info)
	if err == nil {
		_, err = s.lock.Upload(ctx, nopCloser{bytes.NewReader(b)}, &blockblob.UploadOptions{
			AccessConditions: &blob.AccessConditions{LeaseAccessConditions: &blob.LeaseAccessConditions{LeaseID: to(info.ID)}}})
	}
	if err != nil {
		lc.ReleaseLease(ctx, nil)
		return nil, fmt.Errorf("writing the lock information: %w", err)
	}
	return nil, nil
}

// holder reads the information of the lock someone holds. Between taking
// the lease and writing its information a holder leaves the old one: wait a
// little for the lease ID and the information to agree.
func (s *store) holder(ctx context.Context) (*state.LockInfo, error) {
	var info state.LockInfo
	for range 20 {
		info = state.LockInfo{}
		b, _, err := read(ctx, s.lock, nil)
		if err != nil {
			return nil, err
		}
		if len(b) > 0 && json.Unmarshal(b, &info) == nil && info.ID != "" && s.leasedBy(ctx, info.ID) {
			return &info, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if info.ID == "" {
		info.ID = "(unknown: the lock blob holds no lock information)"
	}
	return &info, nil
}

// leasedBy reports whether the lock blob's lease is id: renewing a lease
// with its own ID succeeds and changes nothing for an infinite lease.
func (s *store) leasedBy(ctx context.Context, id string) bool {
	lc, err := lease.NewBlobClient(s.lock, &lease.BlobClientOptions{LeaseID: to(id)})
	if err != nil {
		return false
	}
	_, err = lc.RenewLease(ctx, nil)
	return err == nil
}

func (s *store) Unlock(ctx context.Context, info state.LockInfo) error {
	lc, err := lease.NewBlobClient(s.lock, &lease.BlobClientOptions{LeaseID: to(info.ID)})
	if err != nil {
		return err
	}
	_, err = lc.ReleaseLease(ctx, nil)
	return err
}

func (s *store) ForceUnlock(ctx context.Context, id string) error {
	p, err := s.lock.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return remote.ErrNotLocked
	}
	if err != nil {
		return err
	}
	if p.LeaseState == nil || *p.LeaseState != lease.StateTypeLeased {
		return remote.ErrNotLocked
	}
	if !s.leasedBy(ctx, id) {
		cur := "unknown"
		var info state.LockInfo
		if b, _, err := read(ctx, s.lock, nil); err == nil && json.Unmarshal(b, &info) == nil && info.ID != "" {
			cur = info.ID
		}
		return remote.Mismatch(id, cur)
	}
	lc, err := lease.NewBlobClient(s.lock, &lease.BlobClientOptions{LeaseID: to(id)})
	if err != nil {
		return err
	}
	_, err = lc.BreakLease(ctx, &lease.BlobBreakOptions{BreakPeriod: to(int32(0))})
	return err
}

func to[T any](v T) *T { return &v }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
