package s3

import (
	"context"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/leptonml/lepton/internal/crypt"
	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/internal/state/statetest"
)

// fakeS3 starts gofakes3 on loopback with a bucket "state" and points the
// SDK's default chain at test credentials from the environment only.
func fakeS3(t *testing.T) string {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return statetest.Shared(t, "S3", func() string {
		srv := httptest.NewServer(gofakes3.New(s3mem.New()).Server())
		t.Cleanup(srv.Close)
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(srv.URL); o.UsePathStyle = true })
		if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("state")}); err != nil {
			t.Fatal(err)
		}
		return srv.URL
	})
}

func TestConformance(t *testing.T) {
	url := fakeS3(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		be, err := New(context.Background(), remote.Settings{"bucket": "state", "key": key + "/lepton.state.json", "endpoint": url})
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

func TestSettings(t *testing.T) {
	url := fakeS3(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		s    remote.Settings
		want string
	}{
		{"no bucket", remote.Settings{"key": "k"}, `needs "bucket"`},
		{"unknown", remote.Settings{"bucket": "b", "key": "k", "acces_key": "x"}, `no setting "acces_key"`},
		{"lockfile off", remote.Settings{"bucket": "b", "key": "k", "use_lockfile": "false"}, "use_lockfile must be true"},
		{"bad bool", remote.Settings{"bucket": "b", "key": "k", "encrypt": "yes"}, "true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(ctx, tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// A missing bucket is an error, not an empty state.
	be, err := New(ctx, remote.Settings{"bucket": "nope", "key": "k", "endpoint": url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := be.Read(ctx); err == nil {
		t.Fatal("Read from a missing bucket succeeded")
	}
	// The backup holds the state from before the command.
	a, _ := New(ctx, remote.Settings{"bucket": "state", "key": "backup/k", "endpoint": url})
	s := state.New("test")
	s.Serial = 1
	if err := state.Write(ctx, a, s, state.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := New(ctx, remote.Settings{"bucket": "state", "key": "backup/k", "endpoint": url})
	for _, n := range []uint64{2, 3} {
		s.Serial = n
		if err := state.Write(ctx, b, s, state.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	bk, _ := New(ctx, remote.Settings{"bucket": "state", "key": "backup/k.backup", "endpoint": url})
	if got, err := bk.Read(ctx); err != nil || got.Serial != 1 {
		t.Fatalf("backup = %v, %v; want serial 1", got, err)
	}
}

func TestStore(t *testing.T) {
	url := fakeS3(t)
	statetest.RunStore(t, func(t testing.TB, key string) remote.Store {
		be, err := New(context.Background(), remote.Settings{"bucket": "state", "key": key, "endpoint": url})
		if err != nil {
			t.Fatal(err)
		}
		return remote.StoreOf(be)
	})
}

// Client-side encryption works over s3 as over every backend.
func TestEncryptedConformance(t *testing.T) {
	url := fakeS3(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		be, err := New(context.Background(), remote.Settings{"bucket": "state", "key": key + "/enc.json", "endpoint": url})
		if err != nil {
			t.Fatal(err)
		}
		return state.Encrypted(be, &crypt.Keys{Passphrase: "p", Iterations: 1000})
	})
}
