package gcs

import (
	"context"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/internal/state/statetest"
)

// fakeGCS starts fake-gcs-server on loopback with a bucket "state".
func fakeGCS(t *testing.T) string {
	return statetest.Shared(t, "GCS", func() string {
		srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", NoListener: false})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "state"})
		return srv.URL() + "/storage/v1/"
	})
}

func TestConformance(t *testing.T) {
	ep := fakeGCS(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend {
		be, err := New(context.Background(), remote.Settings{"bucket": "state", "prefix": key, "storage_custom_endpoint": ep})
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

func TestStore(t *testing.T) {
	ep := fakeGCS(t)
	statetest.RunStore(t, func(t testing.TB, key string) remote.Store {
		be, err := New(context.Background(), remote.Settings{"bucket": "state", "prefix": key, "storage_custom_endpoint": ep})
		if err != nil {
			t.Fatal(err)
		}
		return remote.StoreOf(be)
	})
}
