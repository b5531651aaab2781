package clusters

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/leptonml/lepton/providers"
	"github.com/leptonml/lepton/providers/cloud"
	"github.com/leptonml/lepton/providers/remote"
	"github.com/leptonml/lepton/runtime/runspec"
)

// Every node of a cloud cluster boots the lepton agent (runtime/agent) from
// its user data, so trainings, batch inference and endpoints can run on it
// (providers/remote). The user data holds signed URLs to the cluster's run
// storage only, never a credential.

// storageEnv are the variables that point a cloud's object storage at an
// endpoint of its own (an emulator, the sandbox).
var storageEnv = map[string][]string{
	"aws":   {"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"},
	"gcp":   {"STORAGE_EMULATOR_HOST"},
	"azure": {"AZURE_STORAGE_BLOB_ENDPOINT", "AZURE_STORAGE_CONNECTION_STRING"},
}

// runStorageKnown reports whether lepton knows where a cloud's run storage
// is. A provider block that points the compute API at a custom endpoint (a
// test fake, a proxy) without saying where its storage is gets nodes
// without an agent, rather than calls to the public object store.
func runStorageKnown(cloudName string, block map[string]string) bool {
	if block["endpoint"] == "" || block["storage"] != "" {
		return true
	}
	for _, v := range storageEnv[cloudName] {
		if os.Getenv(v) != "" {
			return true
		}
	}
	return false
}

// booting fills each new node's user data with the agent's bootstrap.
type booting struct {
	cloud.Provisioner
	c         *Cluster
	cloudName string
	address   string
	env       providers.Env
	warn      sync.Once
}

func (c *Cluster) booting(p cloud.Provisioner, cloudName, address string, env providers.Env) cloud.Provisioner {
	if c.opts.Runs == nil {
		return p
	}
	return &booting{Provisioner: p, c: c, cloudName: cloudName, address: address, env: env}
}

func (b *booting) Create(ctx context.Context, spec cloud.NodeSpec) (cloud.Node, error) {
	if spec.UserData == "" {
		ud, err := b.userData(ctx, spec.Index)
		if err != nil {
			return cloud.Node{}, err
		}
		spec.UserData = ud
	}
	return b.Provisioner.Create(ctx, spec)
}

func (b *booting) userData(ctx context.Context, index int) (string, error) {
	block := b.env.Providers[b.cloudName]
	if !runStorageKnown(b.cloudName, block) {
		b.warn.Do(func() {
			logger(b.env)("nodes on %s get no lepton agent: the provider block sets endpoint but not storage, so runs cannot be placed on this cluster", b.cloudName)
		})
		return "", nil
	}
	client, err := b.c.opts.Runs.Open(ctx, b.cloudName, block, b.env.Lineage, true)
	if err != nil {
		return "", err
	}
	return client.UserData(ctx, b.cloudName, b.address, index)
}

// deleteRunObjects removes the cluster's objects from its run storage (the
// whole state's objects there when it was the last cluster).
func (c *Cluster) deleteRunObjects(ctx context.Context, cloudName, address string, env providers.Env) error {
	block := env.Providers[cloudName]
	if c.opts.Runs == nil || !runStorageKnown(cloudName, block) {
		return nil
	}
	client, err := c.opts.Runs.Open(ctx, cloudName, block, env.Lineage, false)
	if err != nil {
		return err
	}
	return client.DeleteCluster(ctx, address)
}

// deadAgents returns the nodes whose agent reported once and then stopped
// (the instance is up but nothing runs on it): Read counts them as lost, so
// the plan repairs the cluster. A node whose agent never reported (still
// booting, or created without one) is not dead.
func (c *Cluster) deadAgents(ctx context.Context, cloudName, address string, env providers.Env, n int) map[int]bool {
	block := env.Providers[cloudName]
	if c.opts.Runs == nil || !runStorageKnown(cloudName, block) {
		return nil
	}
	client, err := c.opts.Runs.Open(ctx, cloudName, block, env.Lineage, false)
	if err != nil {
		return nil // the instances' state alone decides
	}
	var dead map[int]bool
	for i := 0; i < n; i++ {
		hb, found, err := client.Heartbeat(ctx, remote.ClusterKey(address), i)
		if err == nil && found && runspec.Stale(hb.Updated, time.Now()) {
			if dead == nil {
				dead = map[int]bool{}
			}
			dead[i] = true
		}
	}
	return dead
}
