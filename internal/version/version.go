// Package version is lepton's version.
package version

// Version is the release; set with -ldflags "-X github.com/leptonml/lepton/internal/version.Version=v1.2.3".
var Version = "0.1.0-dev"
