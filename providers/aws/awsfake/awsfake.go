// Package awsfake is a protocol-level fake of the parts of Amazon EC2 that lepton
// uses: an HTTP server on 127.0.0.1 that speaks EC2's Query API (form-encoded
// Action=... requests, XML responses in the EC2 namespace, errors as
// <Response><Errors><Error><Code>...) so tests run the real aws-sdk-go-v2 EC2
// client against it.
//
// It keeps instance state per region (taken from the SigV4 credential scope),
// honours RunInstances ClientToken idempotency (same token and parameters: the
// same instances; different parameters: IdempotentParameterMismatch), and has
// knobs to fail RunInstances with capacity or quota errors for chosen regions,
// zones and instance types, to drop responses after doing the work (closing the
// connection, or answering 500) so the SDK retries, and to delay every call.
package awsfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Namespace of EC2 API version 2016-11-15, the one the SDK speaks.
const Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"

// DefaultImageName is the name pattern of the AWS Deep Learning Base AMIs the fake
// publishes in every region (with dated suffixes, like the real ones).
const DefaultImageName = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04)"

// Image is a machine image in one region.
type Image struct {
	ID           string
	Name         string
	OwnerAlias   string // "amazon" for AWS-published images
	OwnerID      string
	CreationDate string // RFC 3339, as EC2 returns it
	Architecture string // x86_64 or arm64
	RootDevice   string
}

// CapacityRule makes RunInstances fail with an EC2 capacity or quota error. Empty
// fields match anything; Zone matches an AZ name (us-east-1a) or ID (use1-az1).
type CapacityRule struct {
	Region       string
	Zone         string
	InstanceType string
	Spot         *bool  // nil: both markets
	Code         string // default InsufficientInstanceCapacity
	After        int    // let this many matching calls succeed first (a zone that fills up)
	Times        int    // then fail this many matching calls and stop; 0: always
	// Late accepts RunInstances and then ends the instance while it is pending,
	// with state reason Server.InsufficientInstanceCapacity, as EC2 does when spot
	// capacity vanishes during launch.
	Late bool
}

// DropMode says how a dropped response is lost.
type DropMode int

const (
	// DropClose does the work, then closes the connection without an answer.
	DropClose DropMode = iota
	// Drop500 does the work, then answers 500 InternalError.
	Drop500
)

// Instance is a snapshot of an instance in the fake.
type Instance struct {
	ID, Region, Zone, ZoneID string
	InstanceType             string
	ImageID                  string
	State                    string
	Spot                     bool
	ClientToken              string
	Tags                     map[string]string
	VolumeSizeGB             int
	RootDevice               string
	PrivateIP, PublicIP      string
	ReservationID            string
	StateReason              string
	// UserData is the instance's user data, decoded (RunInstances carries it
	// base64-encoded; DescribeInstanceAttribute userData returns it so).
	UserData string
}

type instance struct {
	Instance
	seq        int
	launched   time.Time
	describes  int // DescribeInstances that saw it pending
	stopping   int // DescribeInstances that saw it shutting-down
	stateCode  int
	late       bool // ends while pending (CapacityRule.Late)
	reasonCode string
	reasonMsg  string
	transition string // stateTransitionReason
	hooked     bool   // OnLaunch saw it
	ended      bool   // OnTerminate saw it
}

type tokenEntry struct {
	digest string
	ids    []string
}

type dropRule struct {
	n    int
	mode DropMode
}

// Server is a running fake. All methods are safe for concurrent use.
type Server struct {
	URL string

	srv *httptest.Server

	mu           sync.Mutex
	seq          int
	instances    map[string]*instance
	tokens       map[string]tokenEntry // region/token
	images       map[string][]Image    // region -> images
	rules        []*CapacityRule
	drops        map[string]*dropRule
	latency      time.Duration
	pendingPolls int
	rejectKeys   map[string]bool
	forget       bool            // drop instances once terminated (EC2 does after about an hour)
	protected    map[string]bool // instances with termination protection
	calls        map[string]int
	account      string
	onLaunch     func(Instance) string
	onTerminate  func(Instance, string)
}

// New starts a fake EC2 endpoint on 127.0.0.1. Close it when done.
func New() *Server {
	s := &Server{
		instances:  map[string]*instance{},
		tokens:     map[string]tokenEntry{},
		images:     map[string][]Image{},
		drops:      map[string]*dropRule{},
		rejectKeys: map[string]bool{},
		protected:  map[string]bool{},
		calls:      map[string]int{},
		account:    "123456789012",
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetLatency delays every call by d before it is handled.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetPendingPolls makes a new instance show as pending in that many
// DescribeInstances answers before it is running (default 0: running at once).
func (s *Server) SetPendingPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pendingPolls = n
}

// FailCapacity adds a rule that makes matching RunInstances calls fail.
func (s *Server) FailCapacity(r CapacityRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Code == "" {
		r.Code = "InsufficientInstanceCapacity"
	}
	s.rules = append(s.rules, &r)
}

// ClearCapacityRules removes every capacity rule.
func (s *Server) ClearCapacityRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// DropResponses loses the answers of the next n calls of action (after the work
// is done), the way a network failure after the server committed would.
func (s *Server) DropResponses(action string, n int, mode DropMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drops[action] = &dropRule{n: n, mode: mode}
}

// SetForgetTerminated makes instances vanish from the fake as soon as they are
// terminated, as EC2 forgets them after a while: describing them then fails with
// InvalidInstanceID.NotFound.
func (s *Server) SetForgetTerminated(forget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forget = forget
}

// ProtectFromTermination turns EC2's termination protection
// (disableApiTermination) on or off for an instance: while it is on,
// TerminateInstances naming it fails with OperationNotPermitted, as EC2's does.
func (s *Server) ProtectFromTermination(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.protected[id] = on
}

// RejectAccessKey makes calls signed with this access key fail with AuthFailure.
func (s *Server) RejectAccessKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectKeys[key] = true
}

// AddImage publishes an image in region (besides the default Deep Learning AMIs).
func (s *Server) AddImage(region string, img Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureImages(region)
	s.images[region] = append(s.images[region], img)
}

// Images returns the images of region, including the defaults.
func (s *Server) Images(region string) []Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ensureImages(region)
	return append([]Image(nil), s.images[region]...)
}

// NewestDefaultImage is the ID of the image a correct lookup of the newest x86_64
// Deep Learning AMI owned by amazon must find in region.
func (s *Server) NewestDefaultImage(region string) string {
	return imageID(region, DefaultImageName+" 20241115")
}

// Terminate terminates an instance behind the client's back (drift), as someone
// using the console would. It reports whether the instance existed.
func (s *Server) Terminate(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok {
		return false
	}
	in.setState(48, "terminated")
	in.reasonCode, in.reasonMsg = "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"
	s.terminated(in, CauseTerminated)
	return true
}

// Causes OnTerminate reports.
const (
	CauseTerminated = "terminated" // TerminateInstances or Terminate
	CausePreempted  = "preempted"  // Interrupt: a spot interruption
)

// OnLaunch sets a function called when RunInstances creates an instance (not
// on an idempotent retry, nor for an instance a CapacityRule ends while
// pending). The address it returns, if any, becomes the instance's private and
// public IP. It is called with the fake's lock held: it must return quickly and
// must not call the Server.
func (s *Server) OnLaunch(f func(Instance) (ip string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onLaunch = f
}

// OnTerminate sets a function called once when an instance launched through
// OnLaunch starts shutting down, with the cause (CauseTerminated,
// CausePreempted). Same rules as OnLaunch.
func (s *Server) OnTerminate(f func(in Instance, cause string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onTerminate = f
}

// Interrupt ends a spot instance the way EC2 reclaims spot capacity: it goes
// shutting-down then terminated with state reason Server.SpotInstanceTermination
// and the transition reason instance-terminated-by-service. It reports whether
// the instance existed and was not already ending.
func (s *Server) Interrupt(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[id]
	if !ok || in.State == "terminated" || in.State == "shutting-down" {
		return false
	}
	in.setState(32, "shutting-down")
	in.stopping = 0
	in.reasonCode, in.reasonMsg = "Server.SpotInstanceTermination", "Server.SpotInstanceTermination: Spot instance termination"
	in.transition = "Service initiated (" + time.Now().UTC().Format("2006-01-02 15:04:05 MST") + ")"
	s.terminated(in, CausePreempted)
	return true
}

// terminated calls the OnTerminate hook once per launched instance.
func (s *Server) terminated(in *instance, cause string) {
	if in.ended || !in.hooked {
		return
	}
	in.ended = true
	if s.onTerminate != nil {
		s.onTerminate(in.snapshot(), cause)
	}
}

// Instances returns every instance the fake has, in creation order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := make([]*instance, 0, len(s.instances))
	for _, in := range s.instances {
		list = append(list, in)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]Instance, len(list))
	for i, in := range list {
		out[i] = in.snapshot()
	}
	return out
}

// Live counts instances that are not terminated.
func (s *Server) Live() int {
	n := 0
	for _, in := range s.Instances() {
		if in.State != "terminated" && in.State != "shutting-down" {
			n++
		}
	}
	return n
}

// Calls returns how many requests of action the fake received (including dropped
// and failed ones); Calls("") counts all.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if action == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[action]
}

func (in *instance) snapshot() Instance {
	out := in.Instance
	out.Tags = make(map[string]string, len(in.Tags))
	for k, v := range in.Tags {
		out.Tags[k] = v
	}
	out.StateReason = in.reasonCode
	return out
}

func (in *instance) setState(code int, name string) {
	in.stateCode, in.State = code, name
	if name == "running" && in.PublicIP == "" {
		in.PublicIP = fmt.Sprintf("54.%d.%d.%d", 10+in.seq/65536%200, in.seq/256%256, in.seq%256)
	}
	if name == "terminated" || name == "shutting-down" {
		in.PublicIP = ""
	}
}

// apiError is an EC2 error answer.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, fail(400, "MalformedQueryString", "%v", err))
		return
	}
	action := r.Form.Get("Action")
	s.mu.Lock()
	s.calls[action]++
	s.mu.Unlock()

	region, key, aerr := credentialScope(r.Header.Get("Authorization"))
	if aerr == nil {
		s.mu.Lock()
		if s.rejectKeys[key] {
			aerr = fail(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
		}
		s.mu.Unlock()
	}
	if aerr == nil && r.Form.Get("Version") != "2016-11-15" {
		aerr = fail(400, "InvalidParameterValue", "unsupported API version %q", r.Form.Get("Version"))
	}
	var body []byte
	if aerr == nil {
		body, aerr = s.dispatch(action, region, r.Form)
	}
	if s.takeDrop(action) {
		mode := s.dropMode(action)
		if mode == DropClose {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
		}
		writeError(w, fail(500, "InternalError", "An internal error has occurred"))
		return
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Write(body)
}

func (s *Server) takeDrop(action string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.drops[action]
	if !ok || d.n <= 0 {
		return false
	}
	d.n--
	return true
}

func (s *Server) dropMode(action string) DropMode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drops[action].mode
}

// credentialScope reads region and access key from a SigV4 Authorization header:
// AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ec2/aws4_request, ...
func credentialScope(auth string) (region, key string, err *apiError) {
	const prefix = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, prefix) {
		return "", "", fail(401, "AuthFailure", "request is not signed with AWS Signature Version 4")
	}
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return "", "", fail(401, "AuthFailure", "Authorization header lacks Credential")
	}
	cred := auth[i+len("Credential="):]
	if j := strings.IndexByte(cred, ','); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "ec2" {
		return "", "", fail(401, "AuthFailure", "malformed credential scope %q", cred)
	}
	return parts[2], parts[0], nil
}

func (s *Server) dispatch(action, region string, f url.Values) ([]byte, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch action {
	case "RunInstances":
		return s.runInstances(region, f)
	case "DescribeInstances":
		return s.describeInstances(region, f)
	case "TerminateInstances":
		return s.terminateInstances(region, f)
	case "DescribeImages":
		return s.describeImages(region, f)
	case "DescribeInstanceAttribute":
		return s.describeInstanceAttribute(region, f)
	case "":
		return nil, fail(400, "MissingAction", "The request must contain the parameter Action")
	}
	return nil, fail(400, "InvalidAction", "The action %s is not valid for this web service.", action)
}

// list reads an EC2 query list: prefix.1, prefix.2, ... (stops at the first gap).
func list(f url.Values, prefix string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := f[prefix+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

type filter struct {
	name   string
	values []string
}

func filters(f url.Values) []filter {
	var out []filter
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name := f.Get(p + ".Name")
		if name == "" {
			return out
		}
		out = append(out, filter{name: name, values: list(f, p+".Value")})
	}
}

// glob matches EC2 filter wildcards: * any run, ? any one character.
func glob(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if glob(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && glob(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && glob(pattern[1:], s[1:])
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// zoneIDPrefix is the AZ ID prefix of a region: us-east-1 -> use1, ap-northeast-1 -> apne1.
func zoneIDPrefix(region string) string {
	dir := map[string]string{"north": "n", "south": "s", "east": "e", "west": "w", "central": "c",
		"northeast": "ne", "northwest": "nw", "southeast": "se", "southwest": "sw"}
	p := strings.Split(region, "-")
	if len(p) != 3 {
		return region
	}
	d, ok := dir[p[1]]
	if !ok {
		d = p[1][:1]
	}
	return p[0] + d + p[2]
}

// resolveZone returns (name, id) of the zone asked for; the fake maps azN to the
// N-th letter (accounts differ in reality; the fake is one account).
func resolveZone(region, name, id string) (string, string, *apiError) {
	switch {
	case id != "":
		prefix := zoneIDPrefix(region) + "-az"
		if !strings.HasPrefix(id, prefix) {
			return "", "", fail(400, "InvalidParameterValue", "Invalid availability zone ID: [%s] is not in region %s", id, region)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(id, prefix))
		if err != nil || n < 1 || n > 26 {
			return "", "", fail(400, "InvalidParameterValue", "Invalid availability zone ID: [%s]", id)
		}
		return region + string(rune('a'+n-1)), id, nil
	case name != "":
		if !strings.HasPrefix(name, region) || len(name) != len(region)+1 {
			return "", "", fail(400, "InvalidParameterValue", "Invalid availability zone: [%s]", name)
		}
		return name, fmt.Sprintf("%s-az%d", zoneIDPrefix(region), name[len(name)-1]-'a'+1), nil
	}
	return region + "a", zoneIDPrefix(region) + "-az1", nil
}

func (s *Server) runInstances(region string, f url.Values) ([]byte, *apiError) {
	imageID, itype := f.Get("ImageId"), f.Get("InstanceType")
	if imageID == "" {
		return nil, fail(400, "MissingParameter", "The request must contain the parameter ImageId")
	}
	if itype == "" {
		return nil, fail(400, "MissingParameter", "The request must contain the parameter InstanceType")
	}
	minCount, err1 := strconv.Atoi(f.Get("MinCount"))
	maxCount, err2 := strconv.Atoi(f.Get("MaxCount"))
	if err1 != nil || err2 != nil || minCount < 1 || maxCount < minCount {
		return nil, fail(400, "InvalidParameterValue", "MinCount and MaxCount must be positive with MinCount <= MaxCount")
	}
	s.ensureImages(region)
	var img *Image
	for i := range s.images[region] {
		if s.images[region][i].ID == imageID {
			img = &s.images[region][i]
		}
	}
	if img == nil {
		return nil, fail(400, "InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID)
	}
	zone, zoneID, aerr := resolveZone(region, f.Get("Placement.AvailabilityZone"), f.Get("Placement.AvailabilityZoneId"))
	if aerr != nil {
		return nil, aerr
	}
	spot := false
	if mt := f.Get("InstanceMarketOptions.MarketType"); mt != "" {
		if mt != "spot" && mt != "capacity-block" {
			return nil, fail(400, "InvalidParameterValue", "Invalid market type %q", mt)
		}
		spot = mt == "spot"
	}
	token := f.Get("ClientToken")
	if len(token) > 64 {
		return nil, fail(400, "InvalidParameterValue", "ClientToken is longer than 64 characters")
	}
	digest := paramsDigest(f)
	if token != "" {
		if e, ok := s.tokens[region+"/"+token]; ok {
			if e.digest != digest {
				return nil, fail(400, "IdempotentParameterMismatch", "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
			}
			return s.reservationXML(e.ids), nil
		}
	}
	late := false
	for _, r := range s.rules {
		if r.matches(region, zone, zoneID, itype, spot) {
			if r.After > 0 {
				r.After--
				continue
			}
			if r.Times > 0 {
				r.Times--
				if r.Times == 0 {
					r.Times = -1 // spent
				}
			}
			if r.Late {
				late = true
				break
			}
			status := 400
			if strings.HasPrefix(r.Code, "Insufficient") {
				status = 500 // EC2 lists capacity shortages as server errors
			}
			return nil, fail(status, r.Code, "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity.", itype, zone)
		}
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		p := "TagSpecification." + strconv.Itoa(i)
		rt := f.Get(p + ".ResourceType")
		if rt == "" {
			break
		}
		if rt != "instance" {
			continue
		}
		for j := 1; ; j++ {
			k := f.Get(p + ".Tag." + strconv.Itoa(j) + ".Key")
			if k == "" {
				break
			}
			tags[k] = f.Get(p + ".Tag." + strconv.Itoa(j) + ".Value")
		}
	}
	volume, root := 0, img.RootDevice
	for i := 1; ; i++ {
		p := "BlockDeviceMapping." + strconv.Itoa(i)
		dev := f.Get(p + ".DeviceName")
		if dev == "" {
			break
		}
		if dev == img.RootDevice {
			if v := f.Get(p + ".Ebs.VolumeSize"); v != "" {
				volume, _ = strconv.Atoi(v)
			}
		}
	}
	if volume == 0 {
		volume = 75 // the DLAMI root snapshot size
	}
	var userData string
	if ud := f.Get("UserData"); ud != "" {
		b, err := base64.StdEncoding.DecodeString(ud)
		if err != nil {
			return nil, fail(400, "InvalidParameterValue", "Invalid BASE64 encoding of user data.")
		}
		if len(b) > 16*1024 {
			return nil, fail(400, "InvalidParameterValue", "User data is limited to 16384 bytes")
		}
		userData = string(b)
	}
	s.seq++
	resID := fmt.Sprintf("r-%017x", s.seq)
	var ids []string
	for n := 0; n < maxCount; n++ {
		s.seq++
		in := &instance{Instance: Instance{
			ID: fmt.Sprintf("i-%017x", s.seq), Region: region, Zone: zone, ZoneID: zoneID,
			InstanceType: itype, ImageID: imageID, Spot: spot, ClientToken: token, Tags: tags,
			VolumeSizeGB: volume, RootDevice: root, ReservationID: resID,
			PrivateIP: fmt.Sprintf("10.0.%d.%d", s.seq/256%256, s.seq%256), UserData: userData,
		}, seq: s.seq, launched: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC).Add(time.Duration(s.seq) * time.Second)}
		in.setState(0, "pending")
		in.late = late
		if s.onLaunch != nil && !late {
			in.hooked = true
			if ip := s.onLaunch(in.snapshot()); ip != "" {
				in.PrivateIP, in.PublicIP = ip, ip
			}
		}
		s.instances[in.ID] = in
		ids = append(ids, in.ID)
	}
	if token != "" {
		s.tokens[region+"/"+token] = tokenEntry{digest: digest, ids: ids}
	}
	return s.reservationXML(ids), nil
}

func (r *CapacityRule) matches(region, zone, zoneID, itype string, spot bool) bool {
	if r.Times < 0 {
		return false
	}
	if r.Region != "" && r.Region != region {
		return false
	}
	if r.Zone != "" && r.Zone != zone && r.Zone != zoneID {
		return false
	}
	if r.InstanceType != "" && r.InstanceType != itype {
		return false
	}
	return r.Spot == nil || *r.Spot == spot
}

// paramsDigest hashes a RunInstances request without its ClientToken and the
// signing noise, to detect a token reused with different arguments.
func paramsDigest(f url.Values) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		if k != "ClientToken" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\x00", k, strings.Join(f[k], ","))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// advance moves an instance along its lifecycle as a describe observes it.
func (s *Server) advance(in *instance) {
	switch in.State {
	case "pending":
		if in.late {
			in.setState(48, "terminated")
			in.reasonCode = "Server.InsufficientInstanceCapacity"
			in.reasonMsg = "Server.InsufficientInstanceCapacity: Insufficient capacity."
			return
		}
		if in.describes >= s.pendingPolls {
			in.setState(16, "running")
		}
		in.describes++
	case "shutting-down":
		// One describe sees it shutting down, the next sees it terminated.
		if in.stopping > 0 {
			in.setState(48, "terminated")
		}
		in.stopping++
	}
	if in.State == "terminated" && s.forget {
		delete(s.instances, in.ID)
	}
}

func (s *Server) describeInstances(region string, f url.Values) ([]byte, *apiError) {
	ids := list(f, "InstanceId")
	var sel []*instance
	if len(ids) > 0 {
		for _, id := range ids {
			in, ok := s.instances[id]
			if !ok || in.Region != region {
				return nil, fail(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
			}
			sel = append(sel, in)
		}
	} else {
		for _, in := range s.instances {
			if in.Region == region {
				sel = append(sel, in)
			}
		}
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].seq < sel[j].seq })
	for _, in := range sel {
		s.advance(in)
	}
	fs := filters(f)
	for _, flt := range fs {
		switch {
		case flt.name == "instance-state-name", flt.name == "instance-type", flt.name == "availability-zone",
			flt.name == "instance-id", flt.name == "client-token", flt.name == "tag-key", strings.HasPrefix(flt.name, "tag:"):
		default:
			return nil, fail(400, "InvalidParameterValue", "The filter '%s' is invalid", flt.name)
		}
	}
	var out []*instance
	for _, in := range sel {
		ok, err := matchInstance(in, fs)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, in)
		}
	}
	start := 0
	if tok := f.Get("NextToken"); tok != "" {
		n, err := strconv.Atoi(tok)
		if err != nil || n < 0 || n > len(out) {
			return nil, fail(400, "InvalidParameterValue", "Invalid NextToken")
		}
		start = n
	}
	end, next := len(out), ""
	if mr := f.Get("MaxResults"); mr != "" {
		if len(ids) > 0 {
			return nil, fail(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		m, err := strconv.Atoi(mr)
		if err != nil || m < 5 || m > 1000 {
			return nil, fail(400, "InvalidParameterValue", "Value (%s) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", mr)
		}
		if start+m < end {
			end, next = start+m, strconv.Itoa(start+m)
		}
	}
	return s.describeXML(out[start:end], next), nil
}

func matchInstance(in *instance, fs []filter) (bool, *apiError) {
	for _, f := range fs {
		var v string
		switch {
		case f.name == "instance-state-name":
			v = in.State
		case f.name == "instance-type":
			v = in.InstanceType
		case f.name == "availability-zone":
			v = in.Zone
		case f.name == "instance-id":
			v = in.ID
		case f.name == "client-token":
			v = in.ClientToken
		case f.name == "tag-key":
			found := false
			for k := range in.Tags {
				if anyGlob(f.values, k) {
					found = true
				}
			}
			if !found {
				return false, nil
			}
			continue
		case strings.HasPrefix(f.name, "tag:"):
			tv, ok := in.Tags[strings.TrimPrefix(f.name, "tag:")]
			if !ok {
				return false, nil
			}
			v = tv
		default:
			return false, fail(400, "InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		if !anyGlob(f.values, v) {
			return false, nil
		}
	}
	return true, nil
}

func (s *Server) terminateInstances(region string, f url.Values) ([]byte, *apiError) {
	ids := list(f, "InstanceId")
	if len(ids) == 0 {
		return nil, fail(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	type change struct {
		ID       string   `xml:"instanceId"`
		Current  xmlState `xml:"currentState"`
		Previous xmlState `xml:"previousState"`
	}
	var changes []change
	for _, id := range ids {
		in, ok := s.instances[id]
		if !ok || in.Region != region {
			return nil, fail(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
		}
		if s.protected[id] {
			return nil, fail(400, "OperationNotPermitted", "The instance '%s' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.", id)
		}
	}
	for _, id := range ids {
		in := s.instances[id]
		prev := xmlState{Code: in.stateCode, Name: in.State}
		if in.State != "terminated" {
			in.setState(32, "shutting-down")
			in.stopping = 0
			in.reasonCode, in.reasonMsg = "Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"
			in.transition = "User initiated (" + time.Now().UTC().Format("2006-01-02 15:04:05 MST") + ")"
		}
		s.terminated(in, CauseTerminated)
		changes = append(changes, change{ID: id, Current: xmlState{Code: in.stateCode, Name: in.State}, Previous: prev})
		if s.forget {
			delete(s.instances, id)
		}
	}
	return marshal(struct {
		XMLName   xml.Name `xml:"TerminateInstancesResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		Changes   []change `xml:"instancesSet>item"`
	}{Xmlns: Namespace, RequestID: s.requestID(), Changes: changes}), nil
}

// describeInstanceAttribute answers the userData attribute (the only one the
// fake keeps) base64-encoded, as EC2 does; an instance without user data has
// an empty <userData/>.
func (s *Server) describeInstanceAttribute(region string, f url.Values) ([]byte, *apiError) {
	id, attr := f.Get("InstanceId"), f.Get("Attribute")
	if id == "" {
		return nil, fail(400, "MissingParameter", "The request must contain the parameter InstanceId")
	}
	if attr != "userData" {
		return nil, fail(400, "InvalidParameterValue", "Value (%s) for parameter attribute is invalid. The fake knows userData only.", attr)
	}
	in, ok := s.instances[id]
	if !ok || in.Region != region {
		return nil, fail(400, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	type value struct {
		Value string `xml:"value,omitempty"`
	}
	out := struct {
		XMLName   xml.Name `xml:"DescribeInstanceAttributeResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		RequestID string   `xml:"requestId"`
		ID        string   `xml:"instanceId"`
		UserData  value    `xml:"userData"`
	}{Xmlns: Namespace, RequestID: s.requestID(), ID: id}
	if in.UserData != "" {
		out.UserData.Value = base64.StdEncoding.EncodeToString([]byte(in.UserData))
	}
	return marshal(out), nil
}

func imageID(region, name string) string {
	h := sha256.Sum256([]byte(region + "/" + name))
	return "ami-" + hex.EncodeToString(h[:])[:17]
}

// ensureImages publishes the default images of a region the first time it is used:
// three Deep Learning AMIs (two x86_64 of different dates, one arm64 that is newer
// still) and an unrelated Ubuntu image, so a lookup must filter and sort correctly.
func (s *Server) ensureImages(region string) {
	if _, ok := s.images[region]; ok {
		return
	}
	dl := func(suffix, date, arch string) Image {
		name := DefaultImageName + " " + suffix
		if arch == "arm64" {
			name = "Deep Learning ARM64 Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) " + suffix
		}
		return Image{ID: imageID(region, name), Name: name, OwnerAlias: "amazon", OwnerID: "898082745236",
			CreationDate: date, Architecture: arch, RootDevice: "/dev/sda1"}
	}
	s.images[region] = []Image{
		dl("20240101", "2024-01-02T10:11:12.000Z", "x86_64"),
		dl("20241115", "2024-11-16T08:00:00.000Z", "x86_64"),
		dl("20241201", "2024-12-02T08:00:00.000Z", "arm64"),
		{ID: imageID(region, "ubuntu"), Name: "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20250101",
			OwnerID: "099720109477", CreationDate: "2025-01-02T00:00:00.000Z", Architecture: "x86_64", RootDevice: "/dev/sda1"},
	}
}

func (s *Server) describeImages(region string, f url.Values) ([]byte, *apiError) {
	s.ensureImages(region)
	owners := list(f, "Owner")
	ids := list(f, "ImageId")
	fs := filters(f)
	type xmlImage struct {
		ID           string `xml:"imageId"`
		Name         string `xml:"name"`
		State        string `xml:"imageState"`
		OwnerID      string `xml:"imageOwnerId"`
		OwnerAlias   string `xml:"imageOwnerAlias,omitempty"`
		CreationDate string `xml:"creationDate"`
		Architecture string `xml:"architecture"`
		RootDevice   string `xml:"rootDeviceName"`
		RootType     string `xml:"rootDeviceType"`
		Public       bool   `xml:"isPublic"`
	}
	var out []xmlImage
	for _, img := range s.images[region] {
		if len(ids) > 0 && !contains(ids, img.ID) {
			continue
		}
		if len(owners) > 0 && !contains(owners, img.OwnerAlias) && !contains(owners, img.OwnerID) &&
			!(contains(owners, "self") && img.OwnerID == s.account) {
			continue
		}
		ok := true
		for _, flt := range fs {
			var v string
			switch flt.name {
			case "name":
				v = img.Name
			case "state":
				v = "available"
			case "architecture":
				v = img.Architecture
			case "owner-alias":
				v = img.OwnerAlias
			case "image-id":
				v = img.ID
			default:
				return nil, fail(400, "InvalidParameterValue", "The filter '%s' is invalid", flt.name)
			}
			if !anyGlob(flt.values, v) {
				ok = false
			}
		}
		if ok {
			out = append(out, xmlImage{ID: img.ID, Name: img.Name, State: "available", OwnerID: img.OwnerID, OwnerAlias: img.OwnerAlias,
				CreationDate: img.CreationDate, Architecture: img.Architecture, RootDevice: img.RootDevice, RootType: "ebs", Public: true})
		}
	}
	return marshal(struct {
		XMLName   xml.Name   `xml:"DescribeImagesResponse"`
		Xmlns     string     `xml:"xmlns,attr"`
		RequestID string     `xml:"requestId"`
		Images    []xmlImage `xml:"imagesSet>item"`
	}{Xmlns: Namespace, RequestID: s.requestID(), Images: out}), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type xmlReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlPlacement struct {
	Zone    string `xml:"availabilityZone"`
	ZoneID  string `xml:"availabilityZoneId"`
	Tenancy string `xml:"tenancy"`
}

type xmlEBS struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xmlBDM struct {
	DeviceName string `xml:"deviceName"`
	EBS        xmlEBS `xml:"ebs"`
}

type xmlInstance struct {
	ID             string       `xml:"instanceId"`
	ImageID        string       `xml:"imageId"`
	State          xmlState     `xml:"instanceState"`
	PrivateDNS     string       `xml:"privateDnsName"`
	DNSName        string       `xml:"dnsName"`
	InstanceType   string       `xml:"instanceType"`
	LaunchTime     string       `xml:"launchTime"`
	Placement      xmlPlacement `xml:"placement"`
	PrivateIP      string       `xml:"privateIpAddress"`
	PublicIP       string       `xml:"ipAddress,omitempty"`
	Architecture   string       `xml:"architecture"`
	RootDeviceType string       `xml:"rootDeviceType"`
	RootDeviceName string       `xml:"rootDeviceName"`
	BlockDevices   []xmlBDM     `xml:"blockDeviceMapping>item"`
	Lifecycle      string       `xml:"instanceLifecycle,omitempty"`
	ClientToken    string       `xml:"clientToken,omitempty"`
	Transition     string       `xml:"reason"` // stateTransitionReason travels as <reason>
	StateReason    *xmlReason   `xml:"stateReason,omitempty"`
	Tags           []xmlTag     `xml:"tagSet>item"`
}

func (in *instance) xml() xmlInstance {
	x := xmlInstance{
		ID: in.ID, ImageID: in.ImageID, State: xmlState{Code: in.stateCode, Name: in.State},
		PrivateDNS:   "ip-" + strings.ReplaceAll(in.PrivateIP, ".", "-") + ".ec2.internal",
		InstanceType: in.InstanceType, LaunchTime: in.launched.Format("2006-01-02T15:04:05.000Z"),
		Placement: xmlPlacement{Zone: in.Zone, ZoneID: in.ZoneID, Tenancy: "default"},
		PrivateIP: in.PrivateIP, PublicIP: in.PublicIP, Architecture: "x86_64",
		RootDeviceType: "ebs", RootDeviceName: in.RootDevice,
		BlockDevices: []xmlBDM{{DeviceName: in.RootDevice, EBS: xmlEBS{VolumeID: "vol-" + strings.TrimPrefix(in.ID, "i-"), Status: "attached", DeleteOnTermination: true}}},
		ClientToken:  in.ClientToken,
		Transition:   in.transition,
	}
	if in.Spot {
		x.Lifecycle = "spot"
	}
	if in.reasonCode != "" {
		x.StateReason = &xmlReason{Code: in.reasonCode, Message: in.reasonMsg}
	}
	keys := make([]string, 0, len(in.Tags))
	for k := range in.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, xmlTag{Key: k, Value: in.Tags[k]})
	}
	return x
}

type xmlReservation struct {
	ID        string        `xml:"reservationId"`
	OwnerID   string        `xml:"ownerId"`
	Instances []xmlInstance `xml:"instancesSet>item"`
}

func (s *Server) reservationXML(ids []string) []byte {
	var xs []xmlInstance
	resID := ""
	for _, id := range ids {
		in := s.instances[id]
		resID = in.ReservationID
		xs = append(xs, in.xml())
	}
	return marshal(struct {
		XMLName   xml.Name      `xml:"RunInstancesResponse"`
		Xmlns     string        `xml:"xmlns,attr"`
		RequestID string        `xml:"requestId"`
		ResID     string        `xml:"reservationId"`
		OwnerID   string        `xml:"ownerId"`
		Instances []xmlInstance `xml:"instancesSet>item"`
	}{Xmlns: Namespace, RequestID: s.requestID(), ResID: resID, OwnerID: s.account, Instances: xs})
}

func (s *Server) describeXML(list []*instance, next string) []byte {
	var res []xmlReservation
	index := map[string]int{}
	for _, in := range list {
		i, ok := index[in.ReservationID]
		if !ok {
			i = len(res)
			index[in.ReservationID] = i
			res = append(res, xmlReservation{ID: in.ReservationID, OwnerID: s.account})
		}
		res[i].Instances = append(res[i].Instances, in.xml())
	}
	return marshal(struct {
		XMLName      xml.Name         `xml:"DescribeInstancesResponse"`
		Xmlns        string           `xml:"xmlns,attr"`
		RequestID    string           `xml:"requestId"`
		Reservations []xmlReservation `xml:"reservationSet>item"`
		NextToken    string           `xml:"nextToken,omitempty"`
	}{Xmlns: Namespace, RequestID: s.requestID(), Reservations: res, NextToken: next})
}

func (s *Server) requestID() string {
	s.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		panic(err) // the response types are fixed; failing to encode them is a bug
	}
	return buf.Bytes()
}

func writeError(w http.ResponseWriter, e *apiError) {
	type xmlError struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	body := marshal(struct {
		XMLName   xml.Name   `xml:"Response"`
		Errors    []xmlError `xml:"Errors>Error"`
		RequestID string     `xml:"RequestID"`
	}{Errors: []xmlError{{Code: e.code, Message: e.message}}, RequestID: "ea966190-f9aa-478e-9ede-example"})
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(e.status)
	w.Write(body)
}

// AccessKey is the access key Credentials signs with.
const AccessKey = "AKIALEPTONFAKE000001"

// Credentials are static credentials for clients of the fake (it checks the
// signature's form and access key, not the signature itself).
func Credentials() credentials.StaticCredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKey, "fake-secret-access-key", "")
}

// Measurement is the outcome of Measure.
type Measurement struct {
	Elapsed time.Duration
	// Ideal is the least time the run could take given the fake's latency: the
	// calls made once (image lookups) one after another, then the clusters in
	// ceil(clusters/parallelism) waves, each wave as long as one cluster's calls in
	// sequence (RunInstances, then DescribeInstances until running).
	Ideal           time.Duration
	Calls           int     // API calls the run made
	CallsPerCluster float64 // excluding image lookups
	Ratio           float64 // Elapsed / Ideal
}

// Measure runs run (an apply of clusters single-node clusters at the given
// parallelism against this fake, whatever drives it: cloud.Provision in a loop, or
// the planner) and compares its wall time with the ideal for the fake's latency.
// It is meant for benchmarks, not unit tests.
func (s *Server) Measure(clusters, parallelism int, run func() error) (Measurement, error) {
	s.mu.Lock()
	latency := s.latency
	before := map[string]int{}
	for k, v := range s.calls {
		before[k] = v
	}
	s.mu.Unlock()
	start := time.Now()
	err := run()
	elapsed := time.Since(start)
	s.mu.Lock()
	total, once := 0, s.calls["DescribeImages"]-before["DescribeImages"]
	for k, v := range s.calls {
		total += v - before[k]
	}
	s.mu.Unlock()
	m := Measurement{Elapsed: elapsed, Calls: total}
	if clusters > 0 && parallelism > 0 {
		m.CallsPerCluster = float64(total-once) / float64(clusters)
		waves := (clusters + parallelism - 1) / parallelism
		m.Ideal = latency * time.Duration(once)
		m.Ideal += time.Duration(float64(latency) * float64(waves) * m.CallsPerCluster)
		if m.Ideal > 0 {
			m.Ratio = float64(elapsed) / float64(m.Ideal)
		}
	}
	return m, err
}
