// Package gcpfake is a protocol-level fake of the Compute Engine REST API (v1)
// for tests: an httptest server on 127.0.0.1 that speaks the JSON the official
// Go client sends and expects, for the calls lepton makes: instances insert, get,
// list, aggregated list and delete, zone operations, and images getFromFamily.
//
// It keeps instance state, deduplicates inserts by requestId like the real API,
// answers with the real error shapes (an operation whose error.errors[].code is
// ZONE_RESOURCE_POOL_EXHAUSTED, an HTTP 403 quotaExceeded, 404 notFound, 409
// alreadyExists), and has knobs to fail zones, drop responses and add latency.
package gcpfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Failure is how inserts into a zone fail.
type Failure int

const (
	// NoFailure lets inserts succeed.
	NoFailure Failure = iota
	// ZoneExhausted: the insert's operation finishes with ZONE_RESOURCE_POOL_EXHAUSTED.
	ZoneExhausted
	// ZoneExhaustedWithDetails: the same with ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS.
	ZoneExhaustedWithDetails
	// OperationQuotaExceeded: the insert's operation finishes with QUOTA_EXCEEDED.
	OperationQuotaExceeded
	// HTTPQuotaExceeded: the insert call itself is refused with HTTP 403 quotaExceeded.
	HTTPQuotaExceeded
)

// Call names used by DropResponses and Calls.
const (
	CallInsert        = "insert"
	CallGet           = "get"
	CallDelete        = "delete"
	CallList          = "list"
	CallAggregated    = "aggregatedList"
	CallOperation     = "operation"
	CallGetFromFamily = "getFromFamily"
)

// Instance is a snapshot of one instance the fake holds.
type Instance struct {
	Project, Zone, Name, ID string
	Status                  string
	MachineType             string // last path segment, e.g. a2-highgpu-1g
	Labels                  map[string]string
	Metadata                map[string]string
	Accelerators            map[string]int // accelerator type name -> count
	OnHostMaintenance       string
	ProvisioningModel       string
	TerminationAction       string
	AutomaticRestart        *bool
	DiskSizeGB              int64
	SourceImage             string
	RequestID               string
}

type instance struct {
	Instance
	body     map[string]any // the insert body plus server-set fields, echoed on get
	bootLeft int            // reads still answering STAGING before RUNNING
	hooked   bool           // OnLaunch saw it
	ended    bool           // OnTerminate saw it
}

type operation struct {
	project, zone, name string
	body                map[string]any
	pendingErr          map[string]any // error set when the operation completes
	pendingHTTP         int
	done                bool
}

// Server is the fake. Its zero value is not usable: call New.
type Server struct {
	URL string
	srv *httptest.Server

	mu         sync.Mutex
	instances  map[string]*instance  // project/zone/name
	ops        map[string]*operation // project/zone/opname
	requestIDs map[string]string     // project/zone/requestId -> op key
	families   map[string]string     // project/family -> image name
	failures   map[string]Failure    // zone -> failure
	drops      map[string]int        // call -> responses still to drop
	calls      map[string]int
	latency    time.Duration
	bootReads  int
	needAuth   bool
	seq        uint64

	onLaunch    func(Instance) string
	onTerminate func(Instance, string)
}

// Causes OnTerminate reports.
const (
	CauseDeleted   = "deleted"   // instances.delete, or DeleteOutOfBand
	CausePreempted = "preempted" // Preempt
	CauseStopped   = "stopped"   // SetStatus to TERMINATED or STOPPED
)

// OnLaunch sets a function called when an insert creates an instance (not on
// a retried insert). The address it returns, if any, becomes the instance's
// internal IP (networkIP) and external IP (natIP). It is called with the
// fake's lock held: it must return quickly and must not call the Server.
func (s *Server) OnLaunch(f func(Instance) (ip string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onLaunch = f
}

// OnTerminate sets a function called once when an instance OnLaunch saw is
// deleted, preempted or stopped, with the cause. Same rules as OnLaunch.
func (s *Server) OnTerminate(f func(in Instance, cause string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onTerminate = f
}

// Preempt reclaims a Spot VM as Compute Engine does: a
// compute.instances.preempted operation, then the instance is deleted when its
// instanceTerminationAction is DELETE and TERMINATED (stopped) otherwise. It
// reports whether the instance existed and was running.
func (s *Server) Preempt(project, zone, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := project + "/" + zone + "/" + name
	in, ok := s.instances[key]
	if !ok || in.Status == "TERMINATED" || in.Status == "STOPPED" {
		return false
	}
	op := s.newOp(project, zone, "compute.instances.preempted", s.link(project, "zones", zone, "instances", name), in.ID)
	op.done = true
	op.body["status"] = "DONE"
	op.body["progress"] = 100
	op.body["statusMessage"] = "Instance was preempted."
	if in.TerminationAction == "DELETE" {
		delete(s.instances, key)
	} else {
		in.Status = "TERMINATED"
		in.bootLeft = 0
	}
	s.terminated(in, CausePreempted)
	return true
}

// terminated calls the OnTerminate hook once per launched instance.
func (s *Server) terminated(in *instance, cause string) {
	if !in.hooked || in.ended {
		return
	}
	in.ended = true
	if s.onTerminate != nil {
		c := in.Instance
		c.Labels = copyMap(in.Labels)
		c.Metadata = copyMap(in.Metadata)
		s.onTerminate(c, cause)
	}
}

// New starts a fake on 127.0.0.1. Close it when done.
func New() *Server {
	s := &Server{
		instances:  map[string]*instance{},
		ops:        map[string]*operation{},
		requestIDs: map[string]string{},
		families:   map[string]string{},
		failures:   map[string]Failure{},
		drops:      map[string]int{},
		calls:      map[string]int{},
		bootReads:  1,
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// AddImageFamily makes images getFromFamily answer image for project/family.
func (s *Server) AddImageFamily(project, family, image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.families[project+"/"+family] = image
}

// FailZone makes inserts into zone fail with f (NoFailure clears it).
func (s *Server) FailZone(zone string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[zone] = f
}

// DropResponses makes the next n calls of kind call (CallInsert, ...) be carried
// out but answered by closing the connection, as when a response is lost.
func (s *Server) DropResponses(call string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops[call] = n
}

// RequireAuth makes requests without an Authorization header fail with the
// API's HTTP 401.
func (s *Server) RequireAuth(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.needAuth = on
}

// SetBootReads sets how many reads of a new instance answer STAGING before
// RUNNING (default 1, so callers' wait loops are exercised; 0 for benchmarks).
func (s *Server) SetBootReads(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bootReads = n
}

// SetLatency delays every answer by d.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Calls reports how many requests of kind call arrived (dropped ones included).
func (s *Server) Calls(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

// Instances returns a snapshot of all instances, sorted by zone and name.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, 0, len(s.instances))
	for _, in := range s.instances {
		c := in.Instance
		c.Labels = copyMap(in.Labels)
		c.Metadata = copyMap(in.Metadata)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Zone != out[j].Zone {
			return out[i].Zone < out[j].Zone
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// DeleteOutOfBand removes an instance as if someone deleted it outside lepton
// (or a spot instance was preempted with termination action DELETE).
func (s *Server) DeleteOutOfBand(project, zone, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := project + "/" + zone + "/" + name
	in, ok := s.instances[key]
	if ok {
		delete(s.instances, key)
		s.terminated(in, CauseDeleted)
	}
	return ok
}

// SetStatus changes an instance's status (for example TERMINATED for a stop).
func (s *Server) SetStatus(project, zone, name, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[project+"/"+zone+"/"+name]
	if ok {
		in.Status = status
		in.bootLeft = 0
		if status == "TERMINATED" || status == "STOPPED" {
			s.terminated(in, CauseStopped)
		}
	}
	return ok
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

var (
	reZoneInstances = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances$`)
	reInstance      = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/instances/([^/]+)$`)
	reOperation     = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/zones/([^/]+)/operations/([^/]+)$`)
	reAggregated    = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/aggregated/instances$`)
	reFamily        = regexp.MustCompile(`^/compute/v1/projects/([^/]+)/global/images/family/([^/]+)$`)
	reLabelKey      = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	reLabelValue    = regexp.MustCompile(`^[a-z0-9_-]{0,63}$`)
	reName          = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// route names the call a request makes, and its path parameters.
func route(r *http.Request) (string, []string) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && reZoneInstances.MatchString(p):
		return CallInsert, reZoneInstances.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodGet && reZoneInstances.MatchString(p):
		return CallList, reZoneInstances.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodGet && reInstance.MatchString(p):
		return CallGet, reInstance.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodDelete && reInstance.MatchString(p):
		return CallDelete, reInstance.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodGet && reOperation.MatchString(p):
		return CallOperation, reOperation.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodGet && reAggregated.MatchString(p):
		return CallAggregated, reAggregated.FindStringSubmatch(p)[1:]
	case r.Method == http.MethodGet && reFamily.MatchString(p):
		return CallGetFromFamily, reFamily.FindStringSubmatch(p)[1:]
	}
	return "", nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call, params := route(r)
	s.mu.Lock()
	s.calls[call]++
	latency := s.latency
	needAuth := s.needAuth
	drop := false
	if s.drops[call] > 0 {
		s.drops[call]--
		drop = true
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}

	var status int
	var body any
	switch {
	case needAuth && r.Header.Get("Authorization") == "":
		status, body = apiError(http.StatusUnauthorized, "required",
			"Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.")
	case call == CallInsert:
		status, body = s.insert(r, params[0], params[1])
	case call == CallGet:
		status, body = s.get(params[0], params[1], params[2])
	case call == CallDelete:
		status, body = s.delete(r, params[0], params[1], params[2])
	case call == CallList:
		status, body = s.list(r, params[0], params[1])
	case call == CallAggregated:
		status, body = s.aggregated(r, params[0])
	case call == CallOperation:
		status, body = s.operation(params[0], params[1], params[2])
	case call == CallGetFromFamily:
		status, body = s.family(params[0], params[1])
	default:
		status, body = apiError(http.StatusNotFound, "notFound", fmt.Sprintf("The requested URL %s %s was not found on this server.", r.Method, r.URL.Path))
	}

	if drop {
		// The work is done; the answer is lost on the way back.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// apiError is the Compute API's JSON error body.
func apiError(code int, reason, message string, details ...map[string]any) (int, any) {
	e := map[string]any{
		"code":    code,
		"message": message,
		"errors":  []any{map[string]any{"message": message, "domain": "global", "reason": reason}},
	}
	if len(details) > 0 {
		d := make([]any, len(details))
		for i := range details {
			d[i] = details[i]
		}
		e["details"] = d
	}
	return code, map[string]any{"error": e}
}

func (s *Server) link(parts ...string) string {
	return s.URL + "/compute/v1/projects/" + strings.Join(parts, "/")
}

// insertBody is the part of an instance the fake checks and reports.
type insertBody struct {
	Name              string                                        `json:"name"`
	MachineType       string                                        `json:"machineType"`
	Labels            map[string]string                             `json:"labels"`
	Metadata          struct{ Items []struct{ Key, Value string } } `json:"metadata"`
	GuestAccelerators []struct {
		AcceleratorType  string `json:"acceleratorType"`
		AcceleratorCount int    `json:"acceleratorCount"`
	} `json:"guestAccelerators"`
	Scheduling struct {
		OnHostMaintenance         string `json:"onHostMaintenance"`
		ProvisioningModel         string `json:"provisioningModel"`
		InstanceTerminationAction string `json:"instanceTerminationAction"`
		AutomaticRestart          *bool  `json:"automaticRestart"`
	} `json:"scheduling"`
	Disks []struct {
		Boot             bool `json:"boot"`
		InitializeParams struct {
			SourceImage string `json:"sourceImage"`
			DiskSizeGb  string `json:"diskSizeGb"` // int64 travels as a JSON string
		} `json:"initializeParams"`
	} `json:"disks"`
	NetworkInterfaces []struct {
		AccessConfigs []map[string]any `json:"accessConfigs"`
	} `json:"networkInterfaces"`
}

var implicitGPU = regexp.MustCompile(`^(a2|a3|a4|a4x|g2|g4)-`)

func last(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

func (s *Server) insert(r *http.Request, project, zone string) (int, any) {
	var raw map[string]any
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&raw); err != nil {
		return apiError(http.StatusBadRequest, "parseError", "Parse Error: "+err.Error())
	}
	buf, _ := json.Marshal(raw)
	var in insertBody
	if err := json.Unmarshal(buf, &in); err != nil {
		return apiError(http.StatusBadRequest, "invalid", "Invalid value for field 'resource': "+err.Error())
	}
	requestID := r.URL.Query().Get("requestId")

	s.mu.Lock()
	defer s.mu.Unlock()
	if requestID != "" {
		if opKey, ok := s.requestIDs[project+"/"+zone+"/"+requestID]; ok {
			return http.StatusOK, s.ops[opKey].body
		}
	}
	if code, body, bad := validate(in, project, zone); bad {
		return code, body
	}
	switch s.failures[zone] {
	case HTTPQuotaExceeded:
		msg := fmt.Sprintf("Quota 'NVIDIA_GPUS' exceeded.  Limit: 0.0 in region %s.", zone[:strings.LastIndexByte(zone, '-')])
		return apiError(http.StatusForbidden, "quotaExceeded", msg, map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": "QUOTA_EXCEEDED",
			"domain": "compute.googleapis.com",
			"metadata": map[string]any{
				"quota_metric": "compute.googleapis.com/nvidia_gpus",
				"quota_limit":  "NVIDIA-GPUS-per-project-region",
			},
		})
	}
	key := project + "/" + zone + "/" + in.Name
	if _, exists := s.instances[key]; exists {
		return apiError(http.StatusConflict, "alreadyExists",
			fmt.Sprintf("The resource 'projects/%s/zones/%s/instances/%s' already exists", project, zone, in.Name))
	}
	s.seq++
	id := strconv.FormatUint(1000000000000+s.seq, 10)
	op := s.newOp(project, zone, "insert", s.link(project, "zones", zone, "instances", in.Name), id)
	switch s.failures[zone] {
	case ZoneExhausted, ZoneExhaustedWithDetails, OperationQuotaExceeded:
		op.pendingErr, op.pendingHTTP = operationFailure(s.failures[zone], project, zone, in.MachineType)
	default:
		s.instances[key] = s.newInstance(in, raw, project, zone, id, requestID)
	}
	if requestID != "" {
		s.requestIDs[project+"/"+zone+"/"+requestID] = project + "/" + zone + "/" + op.name
	}
	return http.StatusOK, op.body
}

// validate applies the API's own rules that lepton must respect.
func validate(in insertBody, project, zone string) (int, any, bool) {
	bad := func(msg string) (int, any, bool) {
		c, b := apiError(http.StatusBadRequest, "invalid", msg)
		return c, b, true
	}
	if !reName.MatchString(in.Name) {
		return bad(fmt.Sprintf("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", in.Name))
	}
	if in.MachineType == "" {
		return bad("Invalid value for field 'resource.machineType': ''. Machine type must be specified.")
	}
	for k, v := range in.Labels {
		if !reLabelKey.MatchString(k) || !reLabelValue.MatchString(v) {
			return bad(fmt.Sprintf("Invalid value for field 'resource.labels': '%s'. Label value '%s' violates format constraints.", k, v))
		}
	}
	hasGPU := len(in.GuestAccelerators) > 0 || implicitGPU.MatchString(last(in.MachineType))
	if hasGPU && in.Scheduling.OnHostMaintenance != "TERMINATE" {
		return bad("Instances with guest accelerators do not support live migration.")
	}
	if in.Scheduling.ProvisioningModel == "SPOT" && in.Scheduling.AutomaticRestart != nil && *in.Scheduling.AutomaticRestart {
		return bad("Invalid value for field 'resource.scheduling.automaticRestart': 'true'. Spot VMs do not support automatic restart.")
	}
	for _, a := range in.GuestAccelerators {
		if !strings.HasPrefix(a.AcceleratorType, "zones/"+zone+"/acceleratorTypes/") && !strings.Contains(a.AcceleratorType, "/zones/"+zone+"/acceleratorTypes/") {
			return bad(fmt.Sprintf("Invalid value for field 'resource.guestAccelerators[0].acceleratorType': '%s'. Accelerator type must be in zone %s.", a.AcceleratorType, zone))
		}
	}
	if len(in.Disks) == 0 || !in.Disks[0].Boot {
		return bad("Invalid value for field 'resource.disks': ''. Boot disk must be specified.")
	}
	return 0, nil, false
}

// operationFailure is the error of a failed insert operation as the API reports it.
func operationFailure(f Failure, project, zone, machineType string) (map[string]any, int) {
	switch f {
	case OperationQuotaExceeded:
		return map[string]any{"errors": []any{map[string]any{
			"code":    "QUOTA_EXCEEDED",
			"message": fmt.Sprintf("Quota 'NVIDIA_GPUS' exceeded.  Limit: 0.0 in region %s.", zone[:strings.LastIndexByte(zone, '-')]),
		}}}, http.StatusForbidden
	case ZoneExhaustedWithDetails:
		return map[string]any{"errors": []any{map[string]any{
			"code":    "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
			"message": fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  '(resource type:compute)'.", project, zone),
			"errorDetails": []any{map[string]any{"errorInfo": map[string]any{
				"reason": "resource_availability", "domain": "compute.googleapis.com",
				"metadata": map[string]any{"zone": zone, "vmType": last(machineType)},
			}}},
		}}}, http.StatusServiceUnavailable
	default:
		return map[string]any{"errors": []any{map[string]any{
			"code":    "ZONE_RESOURCE_POOL_EXHAUSTED",
			"message": fmt.Sprintf("The zone 'projects/%s/zones/%s' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.", project, zone),
		}}}, http.StatusServiceUnavailable
	}
}

func (s *Server) newOp(project, zone, kind, target, targetID string) *operation {
	s.seq++
	name := fmt.Sprintf("operation-%d-%s", 1700000000000+s.seq, kind)
	op := &operation{project: project, zone: zone, name: name, body: map[string]any{
		"kind":          "compute#operation",
		"id":            strconv.FormatUint(5000000000000+s.seq, 10),
		"name":          name,
		"zone":          s.link(project, "zones", zone),
		"operationType": kind,
		"targetLink":    target,
		"targetId":      targetID,
		"status":        "RUNNING",
		"progress":      0,
		"insertTime":    time.Now().UTC().Format(time.RFC3339),
		"selfLink":      s.link(project, "zones", zone, "operations", name),
	}}
	s.ops[project+"/"+zone+"/"+name] = op
	return op
}

func (s *Server) newInstance(in insertBody, raw map[string]any, project, zone, id, requestID string) *instance {
	n := int(s.seq % 250)
	raw["id"] = id
	raw["kind"] = "compute#instance"
	raw["zone"] = s.link(project, "zones", zone)
	raw["selfLink"] = s.link(project, "zones", zone, "instances", in.Name)
	raw["creationTimestamp"] = time.Now().UTC().Format(time.RFC3339)
	if nics, ok := raw["networkInterfaces"].([]any); ok {
		for i, nic := range nics {
			m, ok := nic.(map[string]any)
			if !ok {
				continue
			}
			m["networkIP"] = fmt.Sprintf("10.128.%d.%d", i, n+2)
			m["name"] = fmt.Sprintf("nic%d", i)
			if acs, ok := m["accessConfigs"].([]any); ok {
				for _, ac := range acs {
					if a, ok := ac.(map[string]any); ok {
						a["natIP"] = fmt.Sprintf("34.66.%d.%d", i, n+2)
					}
				}
			}
		}
	}
	inst := &instance{body: raw, bootLeft: s.bootReads, Instance: Instance{
		Project: project, Zone: zone, Name: in.Name, ID: id, Status: "PROVISIONING",
		MachineType:       last(in.MachineType),
		Labels:            in.Labels,
		Metadata:          map[string]string{},
		Accelerators:      map[string]int{},
		OnHostMaintenance: in.Scheduling.OnHostMaintenance,
		ProvisioningModel: in.Scheduling.ProvisioningModel,
		TerminationAction: in.Scheduling.InstanceTerminationAction,
		AutomaticRestart:  in.Scheduling.AutomaticRestart,
		RequestID:         requestID,
	}}
	for _, it := range in.Metadata.Items {
		inst.Metadata[it.Key] = it.Value
	}
	if s.onLaunch != nil {
		inst.hooked = true
		if ip := s.onLaunch(inst.Instance); ip != "" {
			setAddress(raw, ip)
		}
	}
	for _, a := range in.GuestAccelerators {
		inst.Accelerators[last(a.AcceleratorType)] += a.AcceleratorCount
	}
	if len(in.Disks) > 0 {
		inst.SourceImage = in.Disks[0].InitializeParams.SourceImage
		inst.DiskSizeGB, _ = strconv.ParseInt(in.Disks[0].InitializeParams.DiskSizeGb, 10, 64)
	}
	return inst
}

// setAddress makes ip the internal and external address of every interface.
func setAddress(raw map[string]any, ip string) {
	nics, _ := raw["networkInterfaces"].([]any)
	for _, nic := range nics {
		m, ok := nic.(map[string]any)
		if !ok {
			continue
		}
		m["networkIP"] = ip
		acs, _ := m["accessConfigs"].([]any)
		for _, ac := range acs {
			if a, ok := ac.(map[string]any); ok {
				a["natIP"] = ip
			}
		}
	}
}

func (in *instance) view() map[string]any {
	in.body["status"] = in.Status
	return in.body
}

func notFound(project, zone, kind, name string) (int, any) {
	return apiError(http.StatusNotFound, "notFound",
		fmt.Sprintf("The resource 'projects/%s/zones/%s/%s/%s' was not found", project, zone, kind, name))
}

func (s *Server) get(project, zone, name string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[project+"/"+zone+"/"+name]
	if !ok {
		return notFound(project, zone, "instances", name)
	}
	// A real instance moves through PROVISIONING and STAGING before RUNNING.
	switch {
	case in.Status != "PROVISIONING" && in.Status != "STAGING":
	case in.bootLeft > 0:
		in.bootLeft--
		in.Status = "STAGING"
	default:
		in.Status = "RUNNING"
	}
	return http.StatusOK, in.view()
}

func (s *Server) delete(r *http.Request, project, zone, name string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := project + "/" + zone + "/" + name
	in, ok := s.instances[key]
	if !ok {
		return notFound(project, zone, "instances", name)
	}
	op := s.newOp(project, zone, "delete", s.link(project, "zones", zone, "instances", name), in.ID)
	delete(s.instances, key)
	s.terminated(in, CauseDeleted)
	return http.StatusOK, op.body
}

func (s *Server) operation(project, zone, name string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op, ok := s.ops[project+"/"+zone+"/"+name]
	if !ok {
		return notFound(project, zone, "operations", name)
	}
	// An operation finishes on its first poll: Wait then needs one round trip.
	if !op.done {
		op.done = true
		op.body["status"] = "DONE"
		op.body["progress"] = 100
		op.body["endTime"] = time.Now().UTC().Format(time.RFC3339)
		if op.pendingErr != nil {
			op.body["error"] = op.pendingErr
			op.body["httpErrorStatusCode"] = op.pendingHTTP
			op.body["httpErrorMessage"] = strings.ToUpper(http.StatusText(op.pendingHTTP))
		}
	}
	return http.StatusOK, op.body
}

// labelFilter parses the filters lepton sends: labels.KEY = "VALUE" (also eq).
var reLabelFilter = regexp.MustCompile(`^\(?\s*labels\.([a-z0-9_-]+)\s*(?:=|eq)\s*"?([a-z0-9_-]*)"?\s*\)?$`)

func matcher(filter string) (func(*instance) bool, bool) {
	filter = strings.TrimSpace(filter)
	if filter == "" {
		return func(*instance) bool { return true }, true
	}
	m := reLabelFilter.FindStringSubmatch(filter)
	if m == nil {
		return nil, false
	}
	return func(in *instance) bool { return in.Labels[m[1]] == m[2] }, true
}

func (s *Server) list(r *http.Request, project, zone string) (int, any) {
	match, ok := matcher(r.URL.Query().Get("filter"))
	if !ok {
		return apiError(http.StatusBadRequest, "invalid", "Invalid value for field 'filter': '"+r.URL.Query().Get("filter")+"'. Invalid list filter expression.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := []any{}
	for _, in := range s.sorted() {
		if in.Project == project && in.Zone == zone && match(in) {
			items = append(items, in.view())
		}
	}
	return http.StatusOK, map[string]any{"kind": "compute#instanceList", "items": items}
}

func (s *Server) aggregated(r *http.Request, project string) (int, any) {
	match, ok := matcher(r.URL.Query().Get("filter"))
	if !ok {
		return apiError(http.StatusBadRequest, "invalid", "Invalid value for field 'filter': '"+r.URL.Query().Get("filter")+"'. Invalid list filter expression.")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	items := map[string]any{}
	for _, in := range s.sorted() {
		if in.Project != project || !match(in) {
			continue
		}
		scope := "zones/" + in.Zone
		sl, _ := items[scope].(map[string]any)
		if sl == nil {
			sl = map[string]any{"instances": []any{}}
			items[scope] = sl
		}
		sl["instances"] = append(sl["instances"].([]any), in.view())
	}
	return http.StatusOK, map[string]any{"kind": "compute#instanceAggregatedList", "items": items}
}

func (s *Server) sorted() []*instance {
	keys := make([]string, 0, len(s.instances))
	for k := range s.instances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*instance, len(keys))
	for i, k := range keys {
		out[i] = s.instances[k]
	}
	return out
}

func (s *Server) family(project, family string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.families[project+"/"+family]
	if !ok {
		return apiError(http.StatusNotFound, "notFound",
			fmt.Sprintf("The resource 'projects/%s/global/images/family/%s' was not found", project, family))
	}
	return http.StatusOK, map[string]any{
		"kind":     "compute#image",
		"id":       "4242424242",
		"name":     name,
		"family":   family,
		"status":   "READY",
		"selfLink": s.link(project, "global", "images", name),
	}
}
