package sandbox

import (
	"crypto/subtle"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// stsNamespace is the XML namespace of STS API version 2011-06-15.
const stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// stsServer answers AWS STS GetSessionToken (and GetCallerIdentity) for the
// sandbox's access key: lepton signs S3 URLs with a session from STS so
// that its long-lived key never appears in them, and the sandbox's session
// keys are fresh random ones, like STS's.
type stsServer struct {
	accessKey string
	account   string
}

type stsError struct {
	status        int
	code, message string
}

func (s *stsServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.fail(w, stsError{400, "MalformedQueryString", err.Error()})
		return
	}
	if e := s.authorize(r.Header.Get("Authorization")); e != nil {
		s.fail(w, *e)
		return
	}
	if v := r.Form.Get("Version"); v != "2011-06-15" {
		s.fail(w, stsError{400, "InvalidParameterValue", fmt.Sprintf("unsupported API version %q", v)})
		return
	}
	switch r.Form.Get("Action") {
	case "GetSessionToken":
		d := 12 * time.Hour
		if v := r.Form.Get("DurationSeconds"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 900 || n > 129600 {
				s.fail(w, stsError{400, "ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 129600"})
				return
			}
			d = time.Duration(n) * time.Second
		}
		id, err1 := randomString("ASIASBX", 13, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
		secret, err2 := randomString("", 40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
		token, err3 := randomString("", 120, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
		if err1 != nil || err2 != nil || err3 != nil {
			s.fail(w, stsError{500, "InternalFailure", "no randomness"})
			return
		}
		type creds struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		}
		s.write(w, struct {
			XMLName   xml.Name `xml:"GetSessionTokenResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			Creds     creds    `xml:"GetSessionTokenResult>Credentials"`
			RequestID string   `xml:"ResponseMetadata>RequestId"`
		}{Xmlns: stsNamespace, Creds: creds{id, secret, token, time.Now().Add(d).UTC().Format("2006-01-02T15:04:05Z")},
			RequestID: "lepton-sandbox"})
	case "GetCallerIdentity":
		s.write(w, struct {
			XMLName   xml.Name `xml:"GetCallerIdentityResponse"`
			Xmlns     string   `xml:"xmlns,attr"`
			Arn       string   `xml:"GetCallerIdentityResult>Arn"`
			UserID    string   `xml:"GetCallerIdentityResult>UserId"`
			Account   string   `xml:"GetCallerIdentityResult>Account"`
			RequestID string   `xml:"ResponseMetadata>RequestId"`
		}{Xmlns: stsNamespace, Arn: "arn:aws:iam::" + s.account + ":user/lepton-sandbox", UserID: s.accessKey,
			Account: s.account, RequestID: "lepton-sandbox"})
	default:
		s.fail(w, stsError{400, "InvalidAction", fmt.Sprintf("Could not find operation %s for version 2011-06-15", r.Form.Get("Action"))})
	}
}

// authorize checks the SigV4 header's form and access key (not the
// signature: the sandbox is a fake).
func (s *stsServer) authorize(auth string) *stsError {
	const prefix = "AWS4-HMAC-SHA256 "
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !strings.HasPrefix(auth, prefix) || !ok {
		return &stsError{403, "MissingAuthenticationToken", "Request is missing Authentication Token"}
	}
	key, _, _ := strings.Cut(cred, "/")
	if subtle.ConstantTimeCompare([]byte(key), []byte(s.accessKey)) != 1 {
		return &stsError{403, "InvalidClientTokenId", "The security token included in the request is invalid."}
	}
	return nil
}

func (s *stsServer) write(w http.ResponseWriter, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		s.fail(w, stsError{500, "InternalFailure", err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Write([]byte(xml.Header))
	w.Write(b)
}

func (s *stsServer) fail(w http.ResponseWriter, e stsError) {
	b, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: stsNamespace, Type: "Sender", Code: e.code, Message: e.message, RequestID: "lepton-sandbox"})
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.status)
	w.Write(b)
}
