// Package kubernetes runs lepton's work on a Kubernetes cluster: it builds
// the objects lepton creates there (a namespace, a service account, an
// optional ResourceQuota; a training as an Indexed Job with a headless
// Service for rendezvous; a batch inference as a Job; an endpoint as a
// Deployment and a Service), reads their status back the way the
// controllers write it, and checks at plan time that the nodes can hold the
// pods a cluster asks for.
//
// Every object carries labels naming the lepton address it belongs to and
// the state's lineage, so orphans are found by a label selector and drift is
// seen.
package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Label and annotation keys lepton puts on its objects.
const (
	// LabelManagedBy is app.kubernetes.io/managed-by=lepton on every object.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "lepton"
	// LabelAddress holds the lepton address, encoded by LabelValue.
	LabelAddress = "lepton.dev/address"
	// LabelLineage holds the lineage (a UUID) of the state that owns the object.
	LabelLineage = "lepton.dev/lineage"
	// LabelRun holds a run's id (trainings and batch inferences), encoded.
	LabelRun = "lepton.dev/run"
	// AnnotationAddress holds the address verbatim (labels are limited to 63
	// characters of a small alphabet).
	AnnotationAddress = "lepton.dev/address"
)

// Meta says whose an object is.
type Meta struct {
	Address   string // lepton address, e.g. training.digits or endpoint.e["a"]
	Lineage   string // the state's lineage
	Namespace string
}

// Labels are the labels every object of m carries.
func (m Meta) Labels() map[string]string {
	l := map[string]string{LabelManagedBy: ManagedByValue}
	if m.Address != "" {
		l[LabelAddress] = LabelValue(m.Address)
	}
	if m.Lineage != "" {
		l[LabelLineage] = LabelValue(m.Lineage)
	}
	return l
}

// Selector is the label selector that finds every object of m's address
// (or, when Address is empty, of the whole lineage).
func (m Meta) Selector() string {
	l := m.Labels()
	keys := []string{LabelManagedBy, LabelLineage, LabelAddress}
	var parts []string
	for _, k := range keys {
		if v, ok := l[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

func (m Meta) annotations() map[string]string {
	if m.Address == "" {
		return nil
	}
	return map[string]string{AnnotationAddress: m.Address}
}

// LabelValue encodes s as a valid label value, injectively for values that
// fit: characters outside [A-Za-z0-9.-] become _XX (their hex), so
// training.x["a"] is training.x_5B_22a_22_5D. A result longer than 63
// characters is cut and ends with a hash of s, so it stays unique.
func LabelValue(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	v := b.String()
	// A value must start and end with an alphanumeric character.
	if v != "" && !isAlnum(v[0]) {
		v = "x" + v
	}
	if len(v) > validation.LabelValueMaxLength || (v != "" && !isAlnum(v[len(v)-1])) {
		sum := sha256.Sum256([]byte(s))
		h := hex.EncodeToString(sum[:])[:12]
		keep := min(len(v), validation.LabelValueMaxLength-len(h)-1)
		v = strings.TrimRight(v[:keep], "._-") + "-" + h
	}
	return v
}

// ObjectName is a DNS-1035 label (lower case, at most MaxNameLength
// characters) for address: training.digits is training-digits. When
// characters were lost on the way (upper case, brackets, quotes,
// underscores) or the name was cut, a short hash of the address keeps
// distinct addresses apart.
func ObjectName(address string) string {
	var b strings.Builder
	lossy := false
	dash := false
	for i := 0; i < len(address); i++ {
		c := address[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteByte(c)
			dash = false
		case c == '.' || c == '-':
			if dash {
				lossy = true
			} else {
				b.WriteByte('-')
			}
			dash = true
		default:
			lossy = true
			if !dash {
				b.WriteByte('-')
			}
			dash = true
		}
	}
	n := strings.Trim(b.String(), "-")
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		n = "l-" + n
		lossy = true
	}
	if lossy || len(n) > MaxNameLength {
		sum := sha256.Sum256([]byte(address))
		h := hex.EncodeToString(sum[:])[:8]
		n = strings.TrimRight(n[:min(len(n), MaxNameLength-len(h)-1)], "-") + "-" + h
	}
	return n
}

// MaxNameLength bounds object names so that an Indexed Job's pod hostnames
// (NAME-INDEX) stay valid DNS labels.
const MaxNameLength = 52

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
