// Package failovertest holds the cross-cloud failover tests: the real AWS and GCP
// SDK clients against the EC2 and Compute Engine fakes, driven by the catalog's
// choice and cloud.Provision. It has no code of its own; it is a separate package
// so the cloud package's own tests stay free of the cloud SDKs.
package failovertest
