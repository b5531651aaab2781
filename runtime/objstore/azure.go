package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/leptonml/lepton/runtime/runstore"
)

type azBackend struct {
	svc       *service.Client
	c         *container.Client
	account   string
	container string
	// key signs SAS URLs; without it (Azure AD) they are user delegation SAS.
	key  *service.SharedKeyCredential
	http bool // the endpoint is plain HTTP (an emulator)
}

// connString is the part of an Azure Storage connection string that
// matters here.
type connString struct {
	account, key, endpoint string
}

// parseConnString reads AZURE_STORAGE_CONNECTION_STRING's form:
// Key=Value pairs separated by semicolons.
func parseConnString(s string) (connString, error) {
	kv := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, fmt.Errorf("AZURE_STORAGE_CONNECTION_STRING: %q is not Key=Value", k)
		}
		kv[strings.ToLower(k)] = v
	}
	cs := connString{account: kv["accountname"], key: kv["accountkey"], endpoint: kv["blobendpoint"]}
	if cs.account == "" || cs.key == "" {
		return connString{}, errors.New("AZURE_STORAGE_CONNECTION_STRING needs AccountName and AccountKey (a SAS connection string cannot sign URLs)")
	}
	if cs.endpoint == "" {
		proto, suffix := kv["defaultendpointsprotocol"], kv["endpointsuffix"]
		if proto == "" {
			proto = "https"
		}
		if suffix == "" {
			suffix = "core.windows.net"
		}
		cs.endpoint = fmt.Sprintf("%s://%s.blob.%s/", proto, cs.account, suffix)
	}
	return cs, nil
}

func openAzure(ctx context.Context, account, cont string, o Options) (*azBackend, error) {
	b := &azBackend{account: account, container: cont}
	endpoint := os.Getenv("AZURE_STORAGE_BLOB_ENDPOINT")
	var key string
	if s := os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); s != "" {
		cs, err := parseConnString(s)
		if err != nil {
			return nil, err
		}
		if cs.account != account {
			return nil, fmt.Errorf("AZURE_STORAGE_CONNECTION_STRING is for the storage account %q, not %q", cs.account, account)
		}
		key, endpoint = cs.key, cs.endpoint
	} else {
		key = os.Getenv("AZURE_STORAGE_KEY")
	}
	if o.Endpoint != "" {
		endpoint = o.Endpoint
	}
	if endpoint == "" {
		endpoint = "https://" + account + ".blob.core.windows.net/"
	}
	b.http = strings.HasPrefix(endpoint, "http:")
	var err error
	if key != "" {
		if b.key, err = service.NewSharedKeyCredential(account, key); err != nil {
			return nil, fmt.Errorf("the storage account key (AZURE_STORAGE_KEY or the connection string's AccountKey) is not valid: %w", err)
		}
		b.svc, err = service.NewClientWithSharedKeyCredential(endpoint, b.key, nil)
	} else {
		var cred *azidentity.DefaultAzureCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY, or sign in (az login, a managed identity, AZURE_CLIENT_ID...): %w", err)
		}
		b.svc, err = service.NewClient(endpoint, cred, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("the Azure blob endpoint %q: %w", endpoint, err)
	}
	b.c = b.svc.NewContainerClient(cont)
	return b, nil
}

// azBlockSize is the size of the blocks a Put stages; 4 MiB keeps memory
// small and requests few for the objects runs make.
const azBlockSize = 4 << 20

func (b *azBackend) put(ctx context.Context, key string, r io.Reader) error {
	// Blocks are staged and committed at the end: a failed upload commits
	// nothing and leaves the old blob.
	_, err := b.c.NewBlockBlobClient(key).UploadStream(ctx, r, &blockblob.UploadStreamOptions{BlockSize: azBlockSize, Concurrency: 2})
	return b.classify(err)
}

func (b *azBackend) get(ctx context.Context, key string) (io.ReadCloser, error) {
	resp, err := b.c.NewBlobClient(key).DownloadStream(ctx, nil)
	if err != nil {
		return nil, b.classify(err)
	}
	return resp.Body, nil
}

func (b *azBackend) stat(ctx context.Context, key string) (runstore.Info, error) {
	p, err := b.c.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return runstore.Info{}, b.classify(err)
	}
	return runstore.Info{Key: key, Size: deref(p.ContentLength), ModTime: deref(p.LastModified)}, nil
}

func (b *azBackend) list(ctx context.Context, prefix string) ([]runstore.Info, error) {
	var out []runstore.Info
	p := b.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, b.classify(err)
		}
		if page.Segment == nil {
			continue
		}
		for _, it := range page.Segment.BlobItems {
			in := runstore.Info{Key: deref(it.Name)}
			if it.Properties != nil {
				in.Size, in.ModTime = deref(it.Properties.ContentLength), deref(it.Properties.LastModified)
			}
			out = append(out, in)
		}
	}
	return out, nil
}

func (b *azBackend) del(ctx context.Context, key string) error {
	_, err := b.c.NewBlobClient(key).Delete(ctx, nil)
	if err = b.classify(err); errors.Is(err, errNotFound) {
		return nil
	}
	return err
}

func (b *azBackend) sign(ctx context.Context, key, method string, ttl time.Duration) (string, map[string]string, error) {
	now := time.Now().UTC()
	perms := sas.BlobPermissions{Read: true}
	var header map[string]string
	if method == "PUT" {
		perms = sas.BlobPermissions{Write: true, Create: true}
		// Put Blob needs the blob's type.
		header = map[string]string{"x-ms-blob-type": "BlockBlob"}
	}
	v := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPS,
		// A start a little in the past lets a node whose clock is behind
		// use the URL at once.
		StartTime:     now.Add(-5 * time.Minute),
		ExpiryTime:    now.Add(ttl),
		Permissions:   perms.String(),
		ContainerName: b.container,
		BlobName:      key,
	}
	if b.http {
		v.Protocol = sas.ProtocolHTTPSandHTTP
	}
	var (
		qp  sas.QueryParameters
		err error
	)
	if b.key != nil {
		qp, err = v.SignWithSharedKey(b.key)
	} else {
		var udc *service.UserDelegationCredential
		udc, err = b.svc.GetUserDelegationCredential(ctx, service.KeyInfo{
			Start:  to.Ptr(v.StartTime.Format(sas.TimeFormat)),
			Expiry: to.Ptr(v.ExpiryTime.Format(sas.TimeFormat)),
		}, nil)
		if err != nil {
			return "", nil, fmt.Errorf("getting a user delegation key to sign with (the identity needs the Storage Blob Delegator role, or set AZURE_STORAGE_KEY): %w", b.classify(err))
		}
		qp, err = v.SignWithUserDelegation(udc)
	}
	if err != nil {
		return "", nil, err
	}
	// The blob's URL with its slashes as they are (the SDK escapes them as
	// %2F, which the service reads the same), so logs read naturally.
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.TrimSuffix(b.c.URL(), "/") + "/" + strings.Join(segs, "/") + "?" + qp.Encode(), header, nil
}

func (b *azBackend) ensure(ctx context.Context, labels map[string]string) error {
	_, err := b.c.GetProperties(ctx, nil)
	if err == nil {
		return nil
	}
	if !bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return b.classify(err)
	}
	// Metadata names are C# identifiers: lepton-lineage is stored as
	// lepton_lineage.
	meta := map[string]*string{}
	for k, v := range labels {
		meta[strings.ReplaceAll(k, "-", "_")] = to.Ptr(v)
	}
	_, err = b.c.Create(ctx, &container.CreateOptions{Metadata: meta})
	if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	return b.classify(err)
}

func (b *azBackend) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		return errNoBucket
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return errNotFound
	}
	return err
}

func (b *azBackend) hint(err error) string {
	var re *azcore.ResponseError
	var af *azidentity.AuthenticationFailedError
	if (errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized)) || errors.As(err, &af) {
		return fmt.Sprintf("check the Azure credentials for the storage account %s (AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, or az login with a role on the account)", b.account)
	}
	return ""
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
