// Package azblobfake is an Azure Blob Storage service for tests and the
// cloud sandbox: an http.Handler that speaks the Blob REST protocol with
// path-style URLs as Azurite does (http://HOST:PORT/ACCOUNT/CONTAINER/BLOB),
// in memory, for one storage account.
//
// It does what the official SDK (azblob) and plain HTTP through SAS URLs
// need for block blobs: create, delete and describe containers (with
// metadata), Put Blob, Put Block and Put Block List, Get Blob (with ranges),
// Get Blob Properties, Delete Blob and List Blobs (prefix, delimiter,
// marker, maxresults). Every request is authenticated as the service does:
// a SharedKey Authorization header or a service SAS (sv, sr, sp, st, se,
// sig), both verified with the account key (HMAC-SHA256 of the documented
// string to sign); a bad or expired signature is refused with 403 and the
// service's XML error.
//
//	srv := azblobfake.New("devstoreaccount1", key)
//	ts := httptest.NewServer(srv)
//	client, err := azblob.NewClientFromConnectionString(srv.ConnectionString(ts.URL), nil)
package azblobfake

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiVersion is what the fake answers in x-ms-version when the request
// names none.
const apiVersion = "2025-01-05"

// maxBody bounds one request's body (Put Blob or Put Block): the service's
// own limit is 5000 MiB for a block; a test has no use for more than this.
const maxBody = 256 << 20

// Server is one storage account's Blob service. It is safe for concurrent use.
type Server struct {
	account string
	key     []byte
	keyB64  string
	now     func() time.Time

	mu         sync.Mutex
	containers map[string]*container
	seq        int64
}

type container struct {
	meta     map[string]string
	created  time.Time
	modified time.Time
	etag     string
	blobs    map[string]*blob
	// uncommitted blocks by blob name, then block id.
	staged map[string]map[string][]byte
}

type blob struct {
	data        []byte
	contentType string
	md5         []byte
	meta        map[string]string
	created     time.Time
	modified    time.Time
	etag        string
	// blocks are the committed block list (ids and their bytes, slices of data).
	blocks []block
}

type block struct {
	id   string
	data []byte
}

// New returns the Blob service of account, whose key is the base64 account
// key (as in a connection string). It panics on a key that is not base64:
// that is a test's own mistake.
func New(account, key string) *Server {
	k, err := base64.StdEncoding.DecodeString(key)
	if err != nil {
		panic(fmt.Sprintf("azblobfake: the account key is not base64: %v", err))
	}
	return &Server{account: account, key: k, keyB64: key, now: time.Now, containers: map[string]*container{}}
}

// NewKey returns a random account key, base64 as Azure gives them.
func NewKey() string {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Account is the storage account's name.
func (s *Server) Account() string { return s.account }

// BlobEndpoint is the account's blob endpoint when the server is served at
// baseURL (http://127.0.0.1:PORT): baseURL/ACCOUNT.
func (s *Server) BlobEndpoint(baseURL string) string {
	return strings.TrimSuffix(baseURL, "/") + "/" + s.account
}

// ConnectionString is the account's connection string when the server is
// served at baseURL, as AZURE_STORAGE_CONNECTION_STRING takes it. It holds
// the account key.
func (s *Server) ConnectionString(baseURL string) string {
	proto := "http"
	if strings.HasPrefix(baseURL, "https:") {
		proto = "https"
	}
	return fmt.Sprintf("DefaultEndpointsProtocol=%s;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		proto, s.account, s.keyB64, s.BlobEndpoint(baseURL))
}

// Blobs lists the names of the blobs of container that start with prefix,
// sorted (nil when the container does not exist): for tests and the
// sandbox to see what is stored without signing a request.
func (s *Server) Blobs(containerName, prefix string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.containers[containerName]
	if c == nil {
		return nil
	}
	var names []string
	for n := range c.blobs {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Containers lists the account's containers, sorted.
func (s *Server) Containers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for n := range s.containers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// resource is what a request's path names.
type resource struct {
	container, blob string
}

// svcError is the service's error response.
type svcError struct {
	XMLName xml.Name `xml:"Error"`
	Code    string   `xml:"Code"`
	Message string   `xml:"Message"`
	Detail  string   `xml:"AuthenticationErrorDetail,omitempty"`
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, code, msg, detail string) {
	w.Header().Set("x-ms-error-code", code)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	reqID := w.Header().Get("x-ms-request-id")
	b, _ := xml.Marshal(svcError{Code: code, Message: msg + "\nRequestId:" + reqID + "\nTime:" + s.now().UTC().Format(time.RFC3339Nano), Detail: detail})
	io.WriteString(w, xml.Header)
	w.Write(b)
}

// ServeHTTP answers one request of the Blob REST API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	s.mu.Lock()
	s.seq++
	reqID := fmt.Sprintf("00000000-0000-0000-0000-%012d", s.seq)
	s.mu.Unlock()
	h := w.Header()
	h.Set("x-ms-request-id", reqID)
	h.Set("Server", "azblobfake")
	v := r.Header.Get("x-ms-version")
	if v == "" {
		v = apiVersion
	}
	h.Set("x-ms-version", v)
	h.Set("Date", now.UTC().Format(http.TimeFormat))

	path := strings.TrimPrefix(r.URL.Path, "/")
	account, rest, _ := strings.Cut(path, "/")
	if account != s.account {
		s.fail(w, r, http.StatusBadRequest, "InvalidUri", fmt.Sprintf("The requested URI does not represent any resource on the server: this fake serves the account %q at /%s/.", s.account, s.account), "")
		return
	}
	var rs resource
	rs.container, rs.blob, _ = strings.Cut(rest, "/")
	q := r.URL.Query()
	restype, comp := q.Get("restype"), q.Get("comp")

	type route struct {
		perm byte
		do   func(http.ResponseWriter, *http.Request, resource, time.Time)
	}
	var rt route
	switch {
	case rs.container == "":
		s.fail(w, r, http.StatusBadRequest, "InvalidUri", "Account-level operations are not supported by this fake.", "")
		return
	case rs.blob == "" && restype == "container":
		switch {
		case r.Method == http.MethodPut && comp == "":
			rt = route{'c', s.createContainer}
		case r.Method == http.MethodPut && comp == "metadata":
			rt = route{'w', s.setContainerMetadata}
		case r.Method == http.MethodDelete && comp == "":
			rt = route{'d', s.deleteContainer}
		case (r.Method == http.MethodGet || r.Method == http.MethodHead) && (comp == "" || comp == "metadata"):
			rt = route{'r', s.containerProperties}
		case r.Method == http.MethodGet && comp == "list":
			rt = route{'l', s.listBlobs}
		}
	case rs.blob != "":
		switch {
		case r.Method == http.MethodPut && comp == "":
			rt = route{'w', s.putBlob}
		case r.Method == http.MethodPut && comp == "block":
			rt = route{'w', s.putBlock}
		case r.Method == http.MethodPut && comp == "blocklist":
			rt = route{'w', s.putBlockList}
		case r.Method == http.MethodGet && comp == "":
			rt = route{'r', s.getBlob}
		case r.Method == http.MethodHead && comp == "":
			rt = route{'r', s.getBlob}
		case r.Method == http.MethodDelete && comp == "":
			rt = route{'d', s.deleteBlob}
		}
	}
	if rt.do == nil {
		s.fail(w, r, http.StatusBadRequest, "UnsupportedHttpVerb", fmt.Sprintf("The resource doesn't support the operation %s %s (restype=%q comp=%q) in this fake.", r.Method, r.URL.Path, restype, comp), "")
		return
	}
	if err := s.authorize(r, rs, rt.perm, now); err != nil {
		if err.status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", "SharedKey")
		}
		s.fail(w, r, err.status, err.code, err.msg, err.detail)
		return
	}
	rt.do(w, r, rs, now)
}

func metaOf(h http.Header) map[string]string {
	m := map[string]string{}
	for k, v := range h {
		if lk := strings.ToLower(k); strings.HasPrefix(lk, "x-ms-meta-") && len(v) > 0 {
			m[strings.TrimPrefix(lk, "x-ms-meta-")] = v[0]
		}
	}
	return m
}

func setMeta(h http.Header, m map[string]string) {
	for k, v := range m {
		h["x-ms-meta-"+k] = []string{v}
	}
}

func (s *Server) etag() string {
	s.seq++
	return fmt.Sprintf("\"0x%X\"", s.now().UnixNano()+s.seq)
}

func httpTime(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	if !validContainerName(rs.container) {
		s.fail(w, r, http.StatusBadRequest, "InvalidResourceName", "The specified resource name contains invalid characters: container names are 3 to 63 lowercase letters, digits and single hyphens.", "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.containers[rs.container] != nil {
		s.fail(w, r, http.StatusConflict, "ContainerAlreadyExists", "The specified container already exists.", "")
		return
	}
	c := &container{meta: metaOf(r.Header), created: now, modified: now, etag: s.etag(),
		blobs: map[string]*blob{}, staged: map[string]map[string][]byte{}}
	s.containers[rs.container] = c
	w.Header().Set("ETag", c.etag)
	w.Header().Set("Last-Modified", httpTime(now))
	w.WriteHeader(http.StatusCreated)
}

func validContainerName(n string) bool {
	if len(n) < 3 || len(n) > 63 || n[0] == '-' || n[len(n)-1] == '-' || strings.Contains(n, "--") {
		return n == "$root" || n == "$web"
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// lookup returns the container or writes ContainerNotFound; s.mu is held.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request, rs resource) *container {
	c := s.containers[rs.container]
	if c == nil {
		s.fail(w, r, http.StatusNotFound, "ContainerNotFound", "The specified container does not exist.", "")
	}
	return c
}

func (s *Server) setContainerMetadata(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil {
		return
	}
	c.meta, c.modified, c.etag = metaOf(r.Header), now, s.etag()
	w.Header().Set("ETag", c.etag)
	w.Header().Set("Last-Modified", httpTime(now))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) deleteContainer(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lookup(w, r, rs) == nil {
		return
	}
	delete(s.containers, rs.container)
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) containerProperties(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil {
		return
	}
	h := w.Header()
	setMeta(h, c.meta)
	h.Set("ETag", c.etag)
	h.Set("Last-Modified", httpTime(c.modified))
	h.Set("x-ms-lease-status", "unlocked")
	h.Set("x-ms-lease-state", "available")
	h.Set("x-ms-has-immutability-policy", "false")
	h.Set("x-ms-has-legal-hold", "false")
	w.WriteHeader(http.StatusOK)
}

// readBody reads a request body, refusing one over maxBody and checking
// Content-MD5 when the request carries one.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, "InvalidInput", "Reading the request body failed: "+err.Error(), "")
		return nil, false
	}
	if len(b) > maxBody {
		s.fail(w, r, http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("The request body is too large and exceeds this fake's limit of %d bytes.", maxBody), "")
		return nil, false
	}
	if want := r.Header.Get("Content-MD5"); want != "" {
		sum := md5.Sum(b)
		if base64.StdEncoding.EncodeToString(sum[:]) != want {
			s.fail(w, r, http.StatusBadRequest, "Md5Mismatch", "The MD5 value specified in the request did not match with the MD5 value calculated by the server.", "")
			return nil, false
		}
	}
	return b, true
}

// conditionsFail checks If-Match and If-None-Match against the blob (nil
// when missing) and writes the failure; s.mu is held.
func (s *Server) conditionsFail(w http.ResponseWriter, r *http.Request, b *blob) bool {
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	ok := true
	if im != "" && (b == nil || (im != "*" && im != b.etag)) {
		ok = false
	}
	if inm != "" && b != nil && (inm == "*" || inm == b.etag) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotModified)
			return true
		}
		ok = false
	}
	if !ok {
		if b == nil && im != "" {
			s.fail(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
			return true
		}
		s.fail(w, r, http.StatusPreconditionFailed, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.", "")
	}
	return !ok
}

// commit stores data as the blob rs names; s.mu is held.
func (s *Server) commit(w http.ResponseWriter, c *container, rs resource, data []byte, blocks []block, contentType string, meta map[string]string, now time.Time) {
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	sum := md5.Sum(data)
	b := &blob{data: data, contentType: contentType, md5: sum[:], meta: meta, created: now, modified: now, etag: s.etag(), blocks: blocks}
	if old := c.blobs[rs.blob]; old != nil {
		b.created = old.created
	}
	c.blobs[rs.blob] = b
	delete(c.staged, rs.blob)
	h := w.Header()
	h.Set("ETag", b.etag)
	h.Set("Last-Modified", httpTime(now))
	h.Set("Content-MD5", base64.StdEncoding.EncodeToString(b.md5))
	h.Set("x-ms-request-server-encrypted", "true")
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	if bt := r.Header.Get("x-ms-blob-type"); bt != "BlockBlob" {
		if bt == "" {
			s.fail(w, r, http.StatusBadRequest, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type (BlockBlob).", "")
		} else {
			s.fail(w, r, http.StatusBadRequest, "UnsupportedHeader", "Only x-ms-blob-type: BlockBlob is supported by this fake, not "+bt+".", "")
		}
		return
	}
	if r.Header.Get("x-ms-copy-source") != "" {
		s.fail(w, r, http.StatusBadRequest, "UnsupportedHeader", "Copy Blob is not supported by this fake.", "")
		return
	}
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	ct := r.Header.Get("x-ms-blob-content-type")
	if ct == "" {
		ct = r.Header.Get("Content-Type")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil || s.conditionsFail(w, r, c.blobs[rs.blob]) {
		return
	}
	s.commit(w, c, rs, data, []block{{id: "", data: data}}, ct, metaOf(r.Header), now)
}

func (s *Server) putBlock(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	id := r.URL.Query().Get("blockid")
	if raw, err := base64.StdEncoding.DecodeString(id); err != nil || len(raw) == 0 || len(raw) > 64 {
		s.fail(w, r, http.StatusBadRequest, "InvalidQueryParameterValue", "Value for one of the query parameters specified in the request URI is invalid: blockid must be base64 of at most 64 bytes.", "")
		return
	}
	data, ok := s.readBody(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil {
		return
	}
	if c.staged[rs.blob] == nil {
		c.staged[rs.blob] = map[string][]byte{}
	}
	c.staged[rs.blob][id] = data
	sum := md5.Sum(data)
	w.Header().Set("Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	w.Header().Set("x-ms-request-server-encrypted", "true")
	w.WriteHeader(http.StatusCreated)
}

// blockList is the body of Put Block List.
type blockList struct {
	Entries []struct {
		XMLName xml.Name
		ID      string `xml:",chardata"`
	} `xml:",any"`
}

func (s *Server) putBlockList(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	var bl blockList
	if err := xml.Unmarshal(body, &bl); err != nil {
		s.fail(w, r, http.StatusBadRequest, "InvalidXmlDocument", "XML specified is not syntactically valid: "+err.Error(), "")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil {
		return
	}
	old := c.blobs[rs.blob]
	if s.conditionsFail(w, r, old) {
		return
	}
	committed := map[string][]byte{}
	if old != nil {
		for _, b := range old.blocks {
			committed[b.id] = b.data
		}
	}
	staged := c.staged[rs.blob]
	var blocks []block
	size := 0
	for _, e := range bl.Entries {
		id := strings.TrimSpace(e.ID)
		var data []byte
		var found bool
		switch e.XMLName.Local {
		case "Latest":
			if data, found = staged[id]; !found {
				data, found = committed[id]
			}
		case "Uncommitted":
			data, found = staged[id]
		case "Committed":
			data, found = committed[id]
		}
		if !found {
			s.fail(w, r, http.StatusBadRequest, "InvalidBlockList", "The specified block list is invalid: block "+id+" ("+e.XMLName.Local+") was not found.", "")
			return
		}
		blocks = append(blocks, block{id: id, data: data})
		size += len(data)
	}
	data := make([]byte, 0, size)
	for i, b := range blocks {
		data = append(data, b.data...)
		blocks[i].data = data[len(data)-len(b.data):]
	}
	s.commit(w, c, rs, data, blocks, r.Header.Get("x-ms-blob-content-type"), metaOf(r.Header), now)
}

// parseRange reads "bytes=START-[END]" for an object of size bytes.
func parseRange(v string, size int64) (start, end int64, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || strings.Contains(b, ",") {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		e, err := strconv.ParseInt(b, 10, 64)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	s.mu.Lock()
	c := s.lookup(w, r, rs)
	if c == nil {
		s.mu.Unlock()
		return
	}
	b := c.blobs[rs.blob]
	if b == nil {
		s.mu.Unlock()
		s.fail(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	if s.conditionsFail(w, r, b) {
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	// A blob is never changed in place (a write replaces it), so b is read
	// without the lock.
	h := w.Header()
	setMeta(h, b.meta)
	h.Set("ETag", b.etag)
	h.Set("Last-Modified", httpTime(b.modified))
	h.Set("x-ms-creation-time", httpTime(b.created))
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("x-ms-lease-status", "unlocked")
	h.Set("x-ms-lease-state", "available")
	h.Set("x-ms-server-encrypted", "true")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Type", b.contentType)
	q := r.URL.Query()
	for p, hd := range map[string]string{"rsct": "Content-Type", "rscd": "Content-Disposition", "rscc": "Cache-Control", "rsce": "Content-Encoding", "rscl": "Content-Language"} {
		if v := q.Get(p); v != "" && q.Get("sig") != "" {
			h.Set(hd, v)
		}
	}
	size := int64(len(b.data))
	data := b.data
	status := http.StatusOK
	rg := r.Header.Get("x-ms-range")
	if rg == "" {
		rg = r.Header.Get("Range")
	}
	if rg != "" {
		start, end, ok := parseRange(rg, size)
		if !ok {
			h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			s.fail(w, r, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The range specified is invalid for the current size of the resource.", "")
			return
		}
		data = data[start : end+1]
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, size))
	} else {
		h.Set("Content-MD5", base64.StdEncoding.EncodeToString(b.md5))
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
}

func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.lookup(w, r, rs)
	if c == nil {
		return
	}
	b := c.blobs[rs.blob]
	if b == nil {
		s.fail(w, r, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	if s.conditionsFail(w, r, b) {
		return
	}
	delete(c.blobs, rs.blob)
	w.WriteHeader(http.StatusAccepted)
}

// The List Blobs response, element for element as the service writes it.
type listResult struct {
	XMLName         xml.Name  `xml:"EnumerationResults"`
	ServiceEndpoint string    `xml:"ServiceEndpoint,attr"`
	ContainerName   string    `xml:"ContainerName,attr"`
	Prefix          string    `xml:"Prefix,omitempty"`
	Marker          string    `xml:"Marker,omitempty"`
	MaxResults      int       `xml:"MaxResults,omitempty"`
	Delimiter       string    `xml:"Delimiter,omitempty"`
	Blobs           listBlobs `xml:"Blobs"`
	NextMarker      string    `xml:"NextMarker"`
}

type listBlobs struct {
	Blobs    []listItem   `xml:"Blob"`
	Prefixes []listPrefix `xml:"BlobPrefix"`
}

type listItem struct {
	Name       string    `xml:"Name"`
	Properties listProps `xml:"Properties"`
	Metadata   *metaXML  `xml:"Metadata,omitempty"`
}

type listProps struct {
	CreationTime  string `xml:"Creation-Time"`
	LastModified  string `xml:"Last-Modified"`
	Etag          string `xml:"Etag"`
	ContentLength int64  `xml:"Content-Length"`
	ContentType   string `xml:"Content-Type"`
	ContentMD5    string `xml:"Content-MD5"`
	BlobType      string `xml:"BlobType"`
	AccessTier    string `xml:"AccessTier"`
	LeaseStatus   string `xml:"LeaseStatus"`
	LeaseState    string `xml:"LeaseState"`
	ServerEnc     bool   `xml:"ServerEncrypted"`
}

type listPrefix struct {
	Name string `xml:"Name"`
}

// metaXML is a blob's metadata as elements named by their keys.
type metaXML map[string]string

func (m metaXML) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := e.EncodeElement(m[k], xml.StartElement{Name: xml.Name{Local: k}}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

func (s *Server) listBlobs(w http.ResponseWriter, r *http.Request, rs resource, now time.Time) {
	q := r.URL.Query()
	prefix, marker, delim := q.Get("prefix"), q.Get("marker"), q.Get("delimiter")
	max := 5000
	if v := q.Get("maxresults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(w, r, http.StatusBadRequest, "OutOfRangeQueryParameterValue", "maxresults must be a positive number.", "")
			return
		}
		max = min(n, 5000)
	}
	withMeta := strings.Contains(q.Get("include"), "metadata")
	s.mu.Lock()
	c := s.lookup(w, r, rs)
	if c == nil {
		s.mu.Unlock()
		return
	}
	names := make([]string, 0, len(c.blobs))
	for n := range c.blobs {
		if strings.HasPrefix(n, prefix) && n >= marker {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	res := listResult{ServiceEndpoint: "http://" + r.Host + "/" + s.account + "/", ContainerName: rs.container,
		Prefix: prefix, Marker: marker, MaxResults: max, Delimiter: delim}
	if q.Get("maxresults") == "" {
		res.MaxResults = 0
	}
	seen := map[string]bool{}
	count := 0
	for _, n := range names {
		if count == max {
			res.NextMarker = n
			break
		}
		if delim != "" {
			if i := strings.Index(n[len(prefix):], delim); i >= 0 {
				p := n[:len(prefix)+i+len(delim)]
				if !seen[p] {
					seen[p] = true
					res.Blobs.Prefixes = append(res.Blobs.Prefixes, listPrefix{Name: p})
					count++
				}
				continue
			}
		}
		b := c.blobs[n]
		it := listItem{Name: n, Properties: listProps{
			CreationTime: httpTime(b.created), LastModified: httpTime(b.modified), Etag: strings.Trim(b.etag, `"`),
			ContentLength: int64(len(b.data)), ContentType: b.contentType, ContentMD5: base64.StdEncoding.EncodeToString(b.md5),
			BlobType: "BlockBlob", AccessTier: "Hot", LeaseStatus: "unlocked", LeaseState: "available", ServerEnc: true,
		}}
		if withMeta {
			m := metaXML(b.meta)
			it.Metadata = &m
		}
		res.Blobs.Blobs = append(res.Blobs.Blobs, it)
		count++
	}
	s.mu.Unlock()
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(res); err != nil {
		s.fail(w, r, http.StatusInternalServerError, "InternalError", err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}
