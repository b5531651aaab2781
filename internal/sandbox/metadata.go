package sandbox

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// instanceInfo is what a node's metadata server tells about its instance.
type instanceInfo struct {
	Cloud    string
	ID       string // the instance's id as the cloud's API names it (AWS i-..., GCP and Azure: the name)
	NumID    string // GCP's numeric instance id; Azure's vmId
	IP       string
	Type     string
	Region   string
	Zone     string
	Project  string // GCP
	Group    string // Azure resource group
	UserData string
	Items    map[string]string // GCP metadata items (startup-script among them)
	Tags     map[string]string
}

// metadataServer answers one node's instance metadata requests the way its
// cloud's service does (see runtime/runspec/metadata.go for the paths the
// agent uses). Preempting marks the instance: AWS shows
// spot/instance-action, GCP instance/preempted TRUE, Azure a Preempt
// scheduled event, during the grace before the node is killed.
type metadataServer struct {
	info instanceInfo

	mu        sync.Mutex
	tokens    map[string]time.Time // IMDSv2 tokens and when they expire
	preempted time.Time
}

func newMetadataServer(info instanceInfo) *metadataServer {
	return &metadataServer{info: info, tokens: map[string]time.Time{}}
}

func (m *metadataServer) markPreempted(at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.preempted.IsZero() {
		m.preempted = at
	}
}

func (m *metadataServer) preemptedAt() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.preempted
}

func (m *metadataServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch m.info.Cloud {
	case "aws":
		m.serveAWS(w, r)
	case "gcp":
		m.serveGCE(w, r)
	case "azure":
		m.serveAzure(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ---- AWS: IMDSv2

func (m *metadataServer) serveAWS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", "OPTIONS, PUT")
			http.Error(w, "", http.StatusMethodNotAllowed)
			return
		}
		// IMDS refuses token requests that went through a proxy.
		if r.Header.Get("X-Forwarded-For") != "" {
			http.Error(w, "", http.StatusForbidden)
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if err != nil || ttl < 1 || ttl > 21600 {
			http.Error(w, "", http.StatusBadRequest)
			return
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			http.Error(w, "", http.StatusInternalServerError)
			return
		}
		tok := base64.RawURLEncoding.EncodeToString(b)
		m.mu.Lock()
		m.tokens[tok] = time.Now().Add(time.Duration(ttl) * time.Second)
		m.mu.Unlock()
		w.Header().Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, tok)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	// IMDSv2 only (HttpTokens=required, as lepton's instances should be).
	if !m.validToken(r.Header.Get("X-aws-ec2-metadata-token")) {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	in := m.info
	mac := "0e:" + hex.EncodeToString([]byte(in.IP))[:10]
	tree := map[string]any{
		"meta-data": map[string]any{
			"ami-id":         "ami-lepton-sandbox",
			"hostname":       "ip-" + strings.ReplaceAll(in.IP, ".", "-") + ".ec2.internal",
			"instance-id":    in.ID,
			"instance-type":  in.Type,
			"local-hostname": "ip-" + strings.ReplaceAll(in.IP, ".", "-") + ".ec2.internal",
			"local-ipv4":     in.IP,
			"public-ipv4":    in.IP,
			"mac":            mac,
			"placement": map[string]any{
				"availability-zone": in.Zone,
				"region":            in.Region,
			},
			"network": map[string]any{"interfaces": map[string]any{"macs": map[string]any{
				mac: map[string]any{"local-ipv4s": in.IP, "public-ipv4s": in.IP},
			}}},
		},
		"dynamic": map[string]any{"instance-identity": map[string]any{
			"document": mustJSON(map[string]any{
				"instanceId": in.ID, "instanceType": in.Type, "region": in.Region,
				"availabilityZone": in.Zone, "privateIp": in.IP, "imageId": "ami-lepton-sandbox",
			}),
		}},
	}
	if at := m.preemptedAt(); !at.IsZero() {
		tree["meta-data"].(map[string]any)["spot"] = map[string]any{
			"instance-action":  mustJSON(map[string]string{"action": "terminate", "time": at.UTC().Format("2006-01-02T15:04:05Z")}),
			"termination-time": at.UTC().Format("2006-01-02T15:04:05Z"),
		}
	}
	if in.UserData != "" {
		tree["user-data"] = in.UserData
	}
	p := strings.TrimPrefix(r.URL.Path, "/latest")
	if p == r.URL.Path {
		if r.URL.Path == "/" {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "latest\n")
			return
		}
		http.NotFound(w, r)
		return
	}
	node, ok := walk(tree, p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	switch v := node.(type) {
	case string:
		if p == "/user-data" {
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		fmt.Fprint(w, v)
	case map[string]any:
		// A category lists its entries, subcategories with a trailing slash.
		var lines []string
		for _, k := range sortedKeys(v) {
			if _, dir := v[k].(map[string]any); dir {
				k += "/"
			}
			lines = append(lines, k)
		}
		fmt.Fprint(w, strings.Join(lines, "\n"))
	}
}

func (m *metadataServer) validToken(tok string) bool {
	if tok == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	ok := false
	for t, exp := range m.tokens {
		if now.After(exp) {
			delete(m.tokens, t)
			continue
		}
		if subtle.ConstantTimeCompare([]byte(t), []byte(tok)) == 1 {
			ok = true
		}
	}
	return ok
}

// ---- GCP: the GCE metadata server

func (m *metadataServer) serveGCE(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Metadata-Flavor", "Google")
	w.Header().Set("Server", "Metadata Server for VM")
	if r.Header.Get("Metadata-Flavor") != "Google" || r.Header.Get("X-Forwarded-For") != "" {
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, "Missing Metadata-Flavor:Google header.\n")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "", http.StatusMethodNotAllowed)
		return
	}
	in := m.info
	attrs := map[string]any{}
	for k, v := range in.Items {
		attrs[k] = v
	}
	preempted := "FALSE"
	if !m.preemptedAt().IsZero() {
		preempted = "TRUE"
	}
	tree := map[string]any{
		"instance": map[string]any{
			"id":           in.NumID,
			"name":         in.ID,
			"hostname":     in.ID + "." + in.Zone + ".c." + in.Project + ".internal",
			"zone":         "projects/" + projectNumber(in.Project) + "/zones/" + in.Zone,
			"machine-type": "projects/" + projectNumber(in.Project) + "/machineTypes/" + in.Type,
			"preempted":    preempted,
			"attributes":   attrs,
			"network-interfaces": map[string]any{"0": map[string]any{
				"ip": in.IP,
				"access-configs": map[string]any{"0": map[string]any{
					"external-ip": in.IP,
					"type":        "ONE_TO_ONE_NAT",
				}},
			}},
		},
		"project": map[string]any{
			"project-id":         in.Project,
			"numeric-project-id": projectNumber(in.Project),
		},
	}
	const root = "/computeMetadata/v1"
	if !strings.HasPrefix(r.URL.Path, root+"/") {
		http.NotFound(w, r)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, root)
	node, ok := walk(tree, p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	if dir, isDir := node.(map[string]any); isDir {
		if !strings.HasSuffix(p, "/") {
			http.Redirect(w, r, r.URL.Path+"/", http.StatusMovedPermanently)
			return
		}
		if r.URL.Query().Get("recursive") == "true" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(dir)
			return
		}
		w.Header().Set("Content-Type", "application/text")
		for _, k := range sortedKeys(dir) {
			if _, sub := dir[k].(map[string]any); sub {
				k += "/"
			}
			fmt.Fprintln(w, k)
		}
		return
	}
	w.Header().Set("Content-Type", "application/text")
	fmt.Fprint(w, node)
}

// projectNumber is a stable numeric id for a project name.
func projectNumber(project string) string {
	var n uint64 = 100000000000
	for _, c := range project {
		n = n*31 + uint64(c)
	}
	return strconv.FormatUint(100000000000+n%899999999999, 10)
}

// ---- Azure: IMDS

func (m *metadataServer) serveAzure(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	if r.Header.Get("Metadata") != "true" {
		fail(http.StatusBadRequest, "Bad request. Required metadata header not specified")
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		fail(http.StatusBadRequest, "Bad request. The request has an X-Forwarded-For header")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		fail(http.StatusBadRequest, "Bad request. api-version was not specified in the request. For more information refer to aka.ms/azureimds")
		return
	}
	in := m.info
	if r.URL.Path == "/metadata/scheduledevents" {
		events := []any{}
		if at := m.preemptedAt(); !at.IsZero() {
			events = append(events, map[string]any{
				"EventId": "lepton-sandbox-preempt", "EventType": "Preempt", "ResourceType": "VirtualMachine",
				"Resources": []string{in.ID}, "EventStatus": "Scheduled",
				"NotBefore": at.Add(30 * time.Second).UTC().Format(http.TimeFormat), "EventSource": "Platform",
				"DurationInSeconds": -1,
			})
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(map[string]any{"DocumentIncarnation": len(events), "Events": events})
		return
	}
	tags := make([]string, 0, len(in.Tags))
	for _, k := range sortedKeys(in.Tags) {
		tags = append(tags, k+":"+in.Tags[k])
	}
	priority := "Regular"
	if in.Items["priority"] != "" {
		priority = in.Items["priority"]
	}
	tree := map[string]any{"instance": map[string]any{
		"compute": map[string]any{
			"azEnvironment":     "AzurePublicCloud",
			"location":          in.Region,
			"name":              in.ID,
			"osType":            "Linux",
			"priority":          priority,
			"resourceGroupName": in.Group,
			"subscriptionId":    in.Project,
			"tags":              strings.Join(tags, ";"),
			"vmId":              in.NumID,
			"vmSize":            in.Type,
			"zone":              in.Zone,
			// IMDS gives custom data base64-encoded, as it was sent.
			"customData": base64.StdEncoding.EncodeToString([]byte(in.UserData)),
			"userData":   "",
		},
		"network": map[string]any{"interface": []any{map[string]any{
			"ipv4": map[string]any{
				"ipAddress": []any{map[string]any{"privateIpAddress": in.IP, "publicIpAddress": in.IP}},
				"subnet":    []any{map[string]any{"address": "127.0.0.0", "prefix": "8"}},
			},
			"macAddress": "000D3A" + strings.ToUpper(hex.EncodeToString([]byte(in.IP))[:6]),
		}}},
	}}
	const root = "/metadata"
	if !strings.HasPrefix(r.URL.Path, root+"/") {
		fail(http.StatusNotFound, "Not found")
		return
	}
	node, ok := walk(tree, strings.TrimPrefix(r.URL.Path, root))
	if !ok {
		fail(http.StatusNotFound, "Not found")
		return
	}
	if q.Get("format") == "text" {
		switch v := node.(type) {
		case string:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprint(w, v)
		default:
			fail(http.StatusBadRequest, "Bad request. Querying non-leaf nodes with format=text is not supported")
		}
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(node)
}

// walk follows a slash-separated path through nested maps and lists (list
// elements by index); a trailing slash is allowed.
func walk(tree any, path string) (any, bool) {
	node := tree
	for _, seg := range strings.Split(strings.Trim(path, "/"), "/") {
		if seg == "" {
			continue
		}
		switch v := node.(type) {
		case map[string]any:
			next, ok := v[seg]
			if !ok {
				return nil, false
			}
			node = next
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			node = v[i]
		default:
			return nil, false
		}
	}
	return node, true
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // fixed shapes of strings and maps; failing is a bug
	}
	return string(b)
}
