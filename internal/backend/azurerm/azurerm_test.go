package azurerm

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/google/uuid"

	"github.com/leptonml/lepton/internal/state"
	"github.com/leptonml/lepton/internal/state/remote"
	"github.com/leptonml/lepton/internal/state/statetest"
)

// azurite returns the settings of a new container on Azurite
// (.ci/setup-azurite.sh), with its account key in ARM_ACCESS_KEY; without
// Azurite the test fails under CI and is skipped elsewhere.
func azurite(t *testing.T) remote.Settings {
	cs := os.Getenv("LEPTON_TEST_AZURITE_CONNECTION_STRING")
	if cs == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("LEPTON_TEST_AZURITE_CONNECTION_STRING is not set; run eval \"$(.ci/setup-azurite.sh)\"")
		}
		t.Skip("LEPTON_TEST_AZURITE_CONNECTION_STRING is not set (eval \"$(.ci/setup-azurite.sh)\" to run this test)")
	}
	fields := map[string]string{}
	for _, kv := range strings.Split(cs, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			fields[k] = v
		}
	}
	t.Setenv("ARM_ACCESS_KEY", fields["AccountKey"])
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	name := statetest.Shared(t, "AZ_CONTAINER", func() string {
		name := "lepton-state-" + uuid.NewString()[:8]
		c, err := azblob.NewClientFromConnectionString(cs, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateContainer(context.Background(), name, nil); err != nil {
			t.Fatalf("creating a container on Azurite: %v", err)
		}
		t.Cleanup(func() { c.DeleteContainer(context.Background(), name, nil) })
		return name
	})
	return remote.Settings{"storage_account_name": fields["AccountName"], "container_name": name, "endpoint": fields["BlobEndpoint"]}
}

func open(t testing.TB, s remote.Settings, key string) state.Backend {
	c := remote.Settings{"key": key}
	for k, v := range s {
		c[k] = v
	}
	be, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func TestConformance(t *testing.T) {
	s := azurite(t)
	statetest.Run(t, func(t testing.TB, key string) state.Backend { return open(t, s, key) })
}

func TestStore(t *testing.T) {
	s := azurite(t)
	statetest.RunStore(t, func(t testing.TB, key string) remote.Store { return remote.StoreOf(open(t, s, key)) })
}
