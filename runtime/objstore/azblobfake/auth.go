package azblobfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// maxClockSkew is how far a SharedKey request's x-ms-date may be from now,
// as the service allows.
const maxClockSkew = 15 * time.Minute

// authError is a refusal, rendered as the service's XML error.
type authError struct {
	status int
	code   string
	msg    string
	detail string
}

func (e *authError) Error() string { return e.code + ": " + e.msg }

func authFailed(detail string) *authError {
	return &authError{status: http.StatusForbidden, code: "AuthenticationFailed",
		msg:    "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
		detail: detail}
}

// authorize checks the request's SharedKey Authorization header or its SAS
// query parameters against the account key. perm is the SAS permission the
// operation needs (r, w, c, d, l).
func (s *Server) authorize(r *http.Request, rs resource, perm byte, now time.Time) *authError {
	q := r.URL.Query()
	if h := r.Header.Get("Authorization"); h != "" {
		return s.checkSharedKey(r, h, now)
	}
	if q.Get("sig") != "" {
		return s.checkSAS(r, q, rs, perm, now)
	}
	return &authError{status: http.StatusUnauthorized, code: "NoAuthenticationInformation",
		msg: "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."}
}

func (s *Server) checkSharedKey(r *http.Request, h string, now time.Time) *authError {
	scheme, cred, _ := strings.Cut(h, " ")
	if scheme != "SharedKey" {
		return authFailed("only SharedKey authorization is supported, got " + scheme)
	}
	account, sig, ok := strings.Cut(cred, ":")
	if !ok || account != s.account {
		return authFailed(fmt.Sprintf("the account of the Authorization header is not %q", s.account))
	}
	date := r.Header.Get("x-ms-date")
	if date == "" {
		date = r.Header.Get("Date")
	}
	t, err := http.ParseTime(date)
	if err != nil {
		return authFailed("the request has no valid x-ms-date or Date header")
	}
	if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return authFailed(fmt.Sprintf("Request date header too old or too far in the future: '%s'", date))
	}
	sts := s.sharedKeyStringToSign(r)
	if !s.validMAC(sts, sig) {
		// The service echoes the string to sign (never the key); the MAC
		// found is left out because it is a credential for this request.
		return authFailed(fmt.Sprintf("The MAC signature found in the HTTP request is not the same as any computed signature. Server used following string to sign: '%s'.", sts))
	}
	return nil
}

// sharedKeyStringToSign is the string to sign of the SharedKey scheme
// (versions 2015-02-21 and later), for a path-style URL.
func (s *Server) sharedKeyStringToSign(r *http.Request) string {
	length := r.Header.Get("Content-Length")
	if length == "" && r.ContentLength > 0 {
		length = fmt.Sprint(r.ContentLength)
	}
	if length == "0" {
		length = ""
	}
	date := ""
	if r.Header.Get("x-ms-date") == "" {
		date = r.Header.Get("Date")
	}
	return strings.Join([]string{
		r.Method,
		r.Header.Get("Content-Encoding"),
		r.Header.Get("Content-Language"),
		length,
		r.Header.Get("Content-MD5"),
		r.Header.Get("Content-Type"),
		date,
		r.Header.Get("If-Modified-Since"),
		r.Header.Get("If-Match"),
		r.Header.Get("If-None-Match"),
		r.Header.Get("If-Unmodified-Since"),
		r.Header.Get("Range"),
		canonicalHeaders(r.Header),
		s.canonicalResource(r.URL),
	}, "\n")
}

func canonicalHeaders(h http.Header) string {
	m := map[string]string{}
	for k, v := range h {
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(k, "x-ms-") {
			m[k] = strings.Join(v, ",")
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return headerLess(keys[i], keys[j]) })
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + ":" + m[k]
	}
	return strings.Join(lines, "\n")
}

// headerLess orders header names as the service does: its collation
// ignores hyphens first (x-ms-blob-type sorts as xmsblobtype), and only
// names equal without them are ordered by their bytes.
func headerLess(a, b string) bool {
	pa, pb := strings.ReplaceAll(a, "-", ""), strings.ReplaceAll(b, "-", "")
	if pa != pb {
		return pa < pb
	}
	return a < b
}

func (s *Server) canonicalResource(u *url.URL) string {
	var b strings.Builder
	b.WriteString("/" + s.account)
	if p := u.EscapedPath(); p != "" {
		b.WriteString(p)
	} else {
		b.WriteString("/")
	}
	q, _ := url.ParseQuery(u.RawQuery)
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := q[n]
		sort.Strings(v)
		b.WriteString("\n" + strings.ToLower(n) + ":" + strings.Join(v, ","))
	}
	return b.String()
}

func (s *Server) validMAC(stringToSign, sig string) bool {
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(stringToSign))
	return hmac.Equal(got, m.Sum(nil))
}

// parseSASTime reads a SAS start or expiry time in the ISO 8601 forms the
// service accepts.
func parseSASTime(v string) (time.Time, error) {
	for _, f := range []string{time.RFC3339Nano, "2006-01-02T15:04Z", "2006-01-02"} {
		if t, err := time.Parse(f, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 UTC time", v)
}

// checkSAS verifies a service SAS (sr=b or sr=c) signed with the account key.
func (s *Server) checkSAS(r *http.Request, q url.Values, rs resource, perm byte, now time.Time) *authError {
	if q.Get("skoid") != "" {
		return authFailed("user delegation SAS (skoid) is not supported by this fake; sign with the account key")
	}
	if q.Get("ss") != "" || q.Get("srt") != "" {
		return authFailed("account SAS (ss, srt) is not supported by this fake; use a service SAS")
	}
	sv, sr := q.Get("sv"), q.Get("sr")
	if sv < "2015-04-05" {
		return authFailed(fmt.Sprintf("the SAS version sv=%q is not supported (want 2015-04-05 or later)", sv))
	}
	if q.Get("si") != "" {
		return authFailed("stored access policies (si) are not supported by this fake")
	}
	exp, err := parseSASTime(q.Get("se"))
	if err != nil {
		return authFailed("Signed expiry time se: " + err.Error())
	}
	if st := q.Get("st"); st != "" {
		start, err := parseSASTime(st)
		if err != nil {
			return authFailed("Signed start time st: " + err.Error())
		}
		if now.Before(start.Add(-maxClockSkew)) {
			return authFailed(fmt.Sprintf("Signature not valid in the specified time frame: Start [%s] - Expiry [%s] - Current [%s]", start.Format(http.TimeFormat), exp.Format(http.TimeFormat), now.Format(http.TimeFormat)))
		}
	}
	if !now.Before(exp) {
		return authFailed(fmt.Sprintf("Signed expiry time [%s] must be after signed start time and the current time [%s]", exp.Format(http.TimeFormat), now.Format(http.TimeFormat)))
	}
	if spr := q.Get("spr"); spr == "https" && r.TLS == nil {
		return &authError{status: http.StatusForbidden, code: "AuthorizationProtocolMismatch",
			msg: "This request is not authorized to perform this operation using this protocol."}
	}
	var canonical string
	switch sr {
	case "b", "bs", "bv":
		if rs.blob == "" {
			return &authError{status: http.StatusForbidden, code: "AuthorizationResourceTypeMismatch",
				msg: "This request is not authorized to perform this operation using this resource type."}
		}
		canonical = "/blob/" + s.account + "/" + rs.container + "/" + rs.blob
	case "c":
		canonical = "/blob/" + s.account + "/" + rs.container
	default:
		return authFailed(fmt.Sprintf("signed resource sr=%q is not supported (want b or c)", sr))
	}
	fields := []string{q.Get("sp"), q.Get("st"), q.Get("se"), canonical, q.Get("si"), q.Get("sip"), q.Get("spr"), sv}
	if sv >= "2018-11-09" {
		fields = append(fields, sr, q.Get("snapshot"))
		if sv >= "2020-12-06" {
			fields = append(fields, q.Get("ses"))
		}
	}
	fields = append(fields, q.Get("rscc"), q.Get("rscd"), q.Get("rsce"), q.Get("rscl"), q.Get("rsct"))
	sts := strings.Join(fields, "\n")
	if !s.validMAC(sts, q.Get("sig")) {
		return authFailed(fmt.Sprintf("Signature did not match. String to sign used was %s", strings.ReplaceAll(sts, "\n", `\n`)))
	}
	if !strings.ContainsRune(q.Get("sp"), rune(perm)) && !(perm == 'c' && strings.ContainsRune(q.Get("sp"), 'w')) {
		return &authError{status: http.StatusForbidden, code: "AuthorizationPermissionMismatch",
			msg: "This request is not authorized to perform this operation using this permission."}
	}
	return nil
}
