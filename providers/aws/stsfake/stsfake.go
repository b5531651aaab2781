// Package stsfake is a protocol-level fake of AWS STS's GetSessionToken on
// loopback: the query protocol (Action=GetSessionToken, Version=2011-06-15),
// a SigV4 Authorization header scoped to sts, and the service's XML. lepton
// signs the URLs it gives nodes with such a session, so the long-lived
// access key never appears in them.
package stsfake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server answers GetSessionToken.
type Server struct {
	mu       sync.Mutex
	sessions map[string]string // temporary key id -> the long-lived key id it was issued to
}

// New returns an STS fake.
func New() *Server { return &Server{sessions: map[string]string{}} }

// Issued returns how many sessions were issued.
func (s *Server) Issued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type response struct {
	XMLName     xml.Name    `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetSessionTokenResponse"`
	Credentials credentials `xml:"GetSessionTokenResult>Credentials"`
	RequestID   string      `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	b, _ := xml.Marshal(errorResponse{Type: "Sender", Code: code, Message: msg})
	w.Write(b)
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		fail(w, 400, "MalformedQueryString", err.Error())
		return
	}
	key, ok := scope(r.Header.Get("Authorization"))
	if !ok {
		fail(w, 403, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if r.Form.Get("Action") != "GetSessionToken" || r.Form.Get("Version") != "2011-06-15" {
		fail(w, 400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version %s", r.Form.Get("Action"), r.Form.Get("Version")))
		return
	}
	if strings.HasPrefix(key, "ASIA") {
		fail(w, 403, "AccessDenied", "Cannot call GetSessionToken with session credentials")
		return
	}
	d := 12 * time.Hour
	if v := r.Form.Get("DurationSeconds"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 900 || n > 129600 {
			fail(w, 400, "ValidationError", "DurationSeconds must be between 900 and 129600")
			return
		}
		d = time.Duration(n) * time.Second
	}
	c := credentials{AccessKeyID: "ASIA" + random(8), SecretAccessKey: random(20), SessionToken: random(64),
		Expiration: time.Now().Add(d).UTC().Format(time.RFC3339)}
	s.mu.Lock()
	s.sessions[c.AccessKeyID] = key
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	b, _ := xml.Marshal(response{Credentials: c, RequestID: random(8)})
	w.Write(b)
}

// scope returns the access key of a SigV4 Authorization header scoped to sts.
func scope(auth string) (string, bool) {
	i := strings.Index(auth, "Credential=")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || i < 0 {
		return "", false
	}
	cred := auth[i+len("Credential="):]
	if j := strings.IndexByte(cred, ','); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[3] != "sts" || parts[0] == "" {
		return "", false
	}
	return parts[0], true
}
