package gcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"cloud.google.com/go/compute/apiv1/computepb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/googleapi"

	"github.com/leptonml/lepton/providers/cloud"
)

// capacityCodes are Compute Engine error codes and reasons after which another
// zone, region or machine type may still succeed. They are compared normalised
// (lowercase, underscores removed) so the operation codes
// (ZONE_RESOURCE_POOL_EXHAUSTED, QUOTA_EXCEEDED) and the HTTP error reasons
// (quotaExceeded) both match.
var capacityCodes = []string{
	"zoneresourcepoolexhausted",
	"zoneresourcepoolexhaustedwithdetails",
	"regionresourcepoolexhausted",
	"resourcepoolexhausted",
	"quotaexceeded",
	"stockout",
}

func normaliseCode(code string) string {
	return strings.ToLower(strings.ReplaceAll(code, "_", ""))
}

func isCapacityCode(code string) bool {
	n := normaliseCode(code)
	for _, c := range capacityCodes {
		if n == c {
			return true
		}
	}
	return false
}

// operationError turns the error list of a finished operation into a Go error,
// wrapping cloud.ErrCapacity when any of its codes is a capacity or quota code.
func operationError(op *computepb.Operation) error {
	errs := op.GetError().GetErrors()
	if len(errs) == 0 {
		if code := op.GetHttpErrorStatusCode(); code != 0 && (code < 200 || code > 299) {
			return fmt.Errorf("operation %s failed: HTTP %d %s", op.GetName(), code, op.GetHttpErrorMessage())
		}
		return nil
	}
	parts := make([]string, 0, len(errs))
	capacity := false
	for _, e := range errs {
		parts = append(parts, e.GetCode()+": "+e.GetMessage())
		if isCapacityCode(e.GetCode()) {
			capacity = true
		}
	}
	msg := fmt.Sprintf("operation %s failed: %s", op.GetName(), strings.Join(parts, "; "))
	if capacity {
		return fmt.Errorf("%w: %s", cloud.ErrCapacity, msg)
	}
	return errors.New(msg)
}

// apiCodes lists the reasons carried by an API error: the legacy errors[].reason
// items and the google.rpc.ErrorInfo reason.
func apiCodes(err error) (httpCode int, codes []string) {
	var gerr *googleapi.Error
	if errors.As(err, &gerr) {
		httpCode = gerr.Code
		for _, it := range gerr.Errors {
			codes = append(codes, it.Reason)
		}
	}
	var aerr *apierror.APIError
	if errors.As(err, &aerr) {
		if httpCode == 0 {
			httpCode = aerr.HTTPCode()
		}
		if r := aerr.Reason(); r != "" {
			codes = append(codes, r)
		}
	}
	return httpCode, codes
}

// classify wraps an error from a Compute API call: capacity and quota errors wrap
// cloud.ErrCapacity, authentication failures wrap cloud.ErrCredentials.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	httpCode, codes := apiCodes(err)
	for _, c := range codes {
		if isCapacityCode(c) {
			// The HTTP error text omits the reason; name it so output says why.
			return fmt.Errorf("%w: gcp %s: %v [%s]", cloud.ErrCapacity, what, err, strings.Join(codes, ", "))
		}
	}
	if httpCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: gcp %s: %v (check GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`)",
			cloud.ErrCredentials, what, err)
	}
	return fmt.Errorf("gcp %s: %w", what, err)
}

// isNotFound reports an HTTP 404 from the API.
func isNotFound(err error) bool {
	code, _ := apiCodes(err)
	return code == http.StatusNotFound
}

// isAlreadyExists reports an HTTP 409 (an instance with that name exists).
func isAlreadyExists(err error) bool {
	code, _ := apiCodes(err)
	return code == http.StatusConflict
}

// isTransient reports errors after which the same request may be sent again:
// a lost or cut response, or a server-side 5xx/429 that is not a capacity code.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	code, codes := apiCodes(err)
	for _, c := range codes {
		if isCapacityCode(c) {
			return false
		}
	}
	if code == http.StatusTooManyRequests || code >= 500 {
		return true
	}
	if code != 0 {
		return false
	}
	var nerr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &nerr) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "EOF")
}
