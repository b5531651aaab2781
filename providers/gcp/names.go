package gcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
)

// Label keys written on every instance lepton creates. Labels are what the
// Compute API can filter on, so lineage and address live there; the exact,
// unencoded values are also kept in instance metadata (which has no charset rules).
const (
	LabelAddress = "lepton-address"
	LabelLineage = "lepton-lineage"
	LabelIndex   = "lepton-index"
	LabelToken   = "lepton-token"
)

// requestIDNamespace scopes the UUIDs derived from client tokens so they cannot
// collide with UUIDs derived the same way for another purpose.
var requestIDNamespace = uuid.MustParse("6f1d2a4e-5b3c-4e8f-9a07-1c2d3e4f5a6b")

// validLabelValue is GCP's rule for label values: at most 63 characters of
// lowercase letters, digits, underscores and dashes (empty is allowed).
var validLabelValue = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)

// LabelValue encodes s as a GCP label value. A value that already obeys the
// rules is kept as is (state lineages are lowercase UUIDs, so they stay readable
// and filterable); anything else becomes a readable slug plus a hash of the exact
// input, so two different inputs never share a label value.
func LabelValue(s string) string {
	if validLabelValue.MatchString(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "-" + hex.EncodeToString(sum[:])[:12]
	slug := slugify(s, '_')
	if max := 63 - len(suffix); len(slug) > max {
		slug = slug[:max]
	}
	return slug + suffix
}

// slugify lowercases s and replaces every run of characters outside [a-z0-9]
// with sep, trimming sep from both ends.
func slugify(s string, sep byte) string {
	var b strings.Builder
	pendingSep := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if pendingSep && b.Len() > 0 {
				b.WriteByte(sep)
			}
			pendingSep = false
			b.WriteRune(r)
			continue
		}
		pendingSep = true
	}
	return b.String()
}

// tokenHash is a short, stable digest of a client token, used in instance names
// and the lepton-token label.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])[:10]
}

// InstanceName is the deterministic instance name for a node: names are unique
// per zone, so a create retried after a lost response finds the same instance.
// It obeys GCP's name rule [a-z]([-a-z0-9]{0,61}[a-z0-9])?.
func InstanceName(address string, index int, clientToken string) string {
	idx := fmt.Sprintf("-%d-", index)
	h := tokenHash(clientToken)
	slug := slugify(address, '-')
	if max := 63 - len("lp-") - len(idx) - len(h); len(slug) > max {
		slug = strings.TrimRight(slug[:max], "-")
	}
	if slug == "" {
		slug = "node"
	}
	return "lp-" + slug + idx + h
}

// RequestID is the Compute API requestId for one insert: a UUID derived from the
// instance name (which carries the address, index and client token), the zone
// and the machine type, so retries of the same create are deduplicated by the
// API while a failover to another zone or type is a new request.
func RequestID(instanceName, zone, machineType string) string {
	return uuid.NewSHA1(requestIDNamespace, []byte(instanceName+"\x00"+zone+"\x00"+machineType)).String()
}
