package gcsjson

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/compute/metadata"
	"google.golang.org/api/iamcredentials/v1"
	"google.golang.org/api/option"
)

// SignOptions say how to sign a URL.
type SignOptions struct {
	Method  string // GET, PUT, HEAD, POST or DELETE
	Expires time.Time
	// Insecure makes an http:// URL (an emulator).
	Insecure bool
	// GoogleAccessID and PrivateKey (PEM, PKCS#8 or PKCS#1) sign locally;
	// without them the client's credentials or the GCE metadata server name
	// the service account, and its key or IAM signBlob signs.
	GoogleAccessID string
	PrivateKey     []byte
}

// SignedURL returns a V4 signed URL (GOOG4-RSA-SHA256, path style, on the
// host of the client's endpoint) for object in bucket, as
// cloud.google.com/go/storage's BucketHandle.SignedURL does.
func (c *Client) SignedURL(ctx context.Context, bucket, object string, o SignOptions) (string, error) {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return "", err
	}
	if o.GoogleAccessID != "" && len(o.PrivateKey) > 0 {
		return SignV4(bucket, object, u.Host, o, time.Now(), nil)
	}
	if o.GoogleAccessID == "" {
		if o.GoogleAccessID, err = c.accessID(ctx); err != nil {
			return "", err
		}
	}
	var sign func([]byte) ([]byte, error)
	if len(o.PrivateKey) == 0 {
		var sa struct {
			PrivateKey string `json:"private_key"`
		}
		if j := c.credsJSON(); j != nil && json.Unmarshal(j, &sa) == nil && sa.PrivateKey != "" {
			o.PrivateKey = []byte(sa.PrivateKey)
		} else {
			sign = c.signBlob(ctx, o.GoogleAccessID)
		}
	}
	return SignV4(bucket, object, u.Host, o, time.Now(), sign)
}

func (c *Client) credsJSON() []byte {
	if c.creds == nil || len(c.creds.JSON()) == 0 {
		return nil
	}
	return c.creds.JSON()
}

// accessID is the service account the credentials or the GCE metadata
// server name.
func (c *Client) accessID(ctx context.Context) (string, error) {
	why := errors.New("no credentials found on client and not on GCE (Google Compute Engine)")
	if j := c.credsJSON(); j != nil {
		var sa struct {
			ClientEmail        string `json:"client_email"`
			SAImpersonationURL string `json:"service_account_impersonation_url"`
			CredType           string `json:"type"`
		}
		if err := json.Unmarshal(j, &sa); err != nil {
			why = err
		} else {
			switch sa.CredType {
			case "impersonated_service_account", "external_account":
				start, end := strings.LastIndex(sa.SAImpersonationURL, "/"), strings.LastIndex(sa.SAImpersonationURL, ":")
				if end > start {
					return sa.SAImpersonationURL[start+1 : end], nil
				}
				why = errors.New("error parsing external or impersonated service account credentials")
			case "service_account":
				if sa.ClientEmail != "" {
					return sa.ClientEmail, nil
				}
				why = errors.New("empty service account client email")
			default:
				why = errors.New("unable to parse credentials; only service_account, external_account and impersonated_service_account credentials are supported")
			}
		}
	}
	if metadata.OnGCE() {
		email, err := metadata.EmailWithContext(ctx, "default")
		if err == nil && email != "" {
			return email, nil
		} else if err != nil {
			why = err
		} else {
			why = errors.New("empty email from GCE metadata service")
		}
	}
	return "", fmt.Errorf("storage: unable to detect default GoogleAccessID: %w. Please provide the GoogleAccessID or use a supported means for autodetecting it (see https://pkg.go.dev/cloud.google.com/go/storage#hdr-Credential_requirements_for_signing)", why)
}

// signBlob signs with the service account's Google-held key through the
// IAM Credentials API.
func (c *Client) signBlob(ctx context.Context, email string) func([]byte) ([]byte, error) {
	return func(in []byte) ([]byte, error) {
		opts := []option.ClientOption{option.WithHTTPClient(c.hc)}
		if c.creds != nil {
			ud, err := c.creds.UniverseDomain(ctx)
			if err != nil {
				return nil, err
			}
			opts = append(opts, option.WithUniverseDomain(ud))
		}
		svc, err := iamcredentials.NewService(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("unable to create iamcredentials client: %w", err)
		}
		var resp *iamcredentials.SignBlobResponse
		if err := Retry(ctx, func() error {
			resp, err = svc.Projects.ServiceAccounts.SignBlob("projects/-/serviceAccounts/"+email,
				&iamcredentials.SignBlobRequest{Payload: base64.StdEncoding.EncodeToString(in)}).Context(ctx).Do()
			return err
		}); err != nil {
			return nil, fmt.Errorf("unable to sign bytes: %w", err)
		}
		return base64.StdEncoding.DecodeString(resp.SignedBlob)
	}
}

// SignV4 signs a path-style URL for object in bucket on host, following
// https://cloud.google.com/storage/docs/access-control/signing-urls-manually:
// the only signed header is host, and the payload is UNSIGNED-PAYLOAD.
// With o.PrivateKey it signs with that key, else with sign.
func SignV4(bucket, object, host string, o SignOptions, now time.Time, sign func([]byte) ([]byte, error)) (string, error) {
	now = now.UTC()
	method := strings.ToUpper(o.Method)
	switch {
	case o.GoogleAccessID == "":
		return "", errors.New("storage: missing required GoogleAccessID")
	case (len(o.PrivateKey) == 0) == (sign == nil):
		return "", errors.New("storage: exactly one of PrivateKey or SignedBytes must be set")
	case method != "GET" && method != "PUT" && method != "HEAD" && method != "POST" && method != "DELETE":
		return "", errors.New("storage: HTTP method should be one of DELETE, GET, HEAD, POST, PUT")
	case o.Expires.IsZero():
		return "", errors.New("storage: missing required expires option")
	case !o.Expires.Before(now.Add(604801 * time.Second)):
		return "", errors.New("storage: expires must be within seven days from now")
	}
	if host == "" {
		host = "storage.googleapis.com"
	}
	var segs []string
	for _, s := range strings.Split(bucket+"/"+object, "/") {
		segs = append(segs, strings.ReplaceAll(url.QueryEscape(s), "+", "%20"))
	}
	path := strings.Join(segs, "/")
	timestamp := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/auto/storage/goog4_request"
	q := url.Values{
		"X-Goog-Algorithm":     {"GOOG4-RSA-SHA256"},
		"X-Goog-Credential":    {o.GoogleAccessID + "/" + scope},
		"X-Goog-Date":          {timestamp},
		"X-Goog-Expires":       {fmt.Sprint(int(o.Expires.Sub(now).Seconds()))},
		"X-Goog-SignedHeaders": {"host"},
	}
	// The host header is signed without its port, as the storage package does.
	hostname := (&url.URL{Host: host}).Hostname()
	canonical := fmt.Sprintf("%s\n/%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
		method, path, strings.ReplaceAll(q.Encode(), "+", "%20"), hostname)
	sum := sha256.Sum256([]byte(canonical))
	toSign := fmt.Sprintf("GOOG4-RSA-SHA256\n%s\n%s\n%s", timestamp, scope, hex.EncodeToString(sum[:]))
	if len(o.PrivateKey) > 0 {
		key, err := parseKey(o.PrivateKey)
		if err != nil {
			return "", err
		}
		sign = func(b []byte) ([]byte, error) {
			d := sha256.Sum256(b)
			return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d[:])
		}
	}
	sig, err := sign([]byte(toSign))
	if err != nil {
		return "", err
	}
	q.Set("X-Goog-Signature", hex.EncodeToString(sig))
	scheme := "https"
	if o.Insecure {
		scheme = "http"
	}
	return scheme + "://" + host + "/" + path + "?" + q.Encode(), nil
}

func parseKey(key []byte) (*rsa.PrivateKey, error) {
	if block, _ := pem.Decode(key); block != nil {
		key = block.Bytes
	}
	k, err := x509.ParsePKCS8PrivateKey(key)
	if err != nil {
		if k, err = x509.ParsePKCS1PrivateKey(key); err != nil {
			return nil, err
		}
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("oauth2: private key is invalid")
	}
	return rk, nil
}
