package azure

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/leptonml/lepton/providers/cloud"
)

// capacityCodes are ARM error codes after which another size, zone or region
// may succeed. OperationNotAllowed counts only when its message is about quota.
var capacityCodes = []string{
	"AllocationFailed",
	"ZonalAllocationFailed",
	"OverconstrainedAllocationRequest",
	"OverconstrainedZonalAllocationRequest",
	"SkuNotAvailable",
	"QuotaExceeded",
	"SpotQuotaExceeded",
	"LowPriorityQuotaExceeded",
}

// isCapacity reports whether err is a capacity or quota error, from the
// ResponseError's code or, for errors nested in a failed long-running
// operation, the codes quoted in its body.
func isCapacity(err error) bool {
	text := err.Error()
	var rerr *azcore.ResponseError
	code := ""
	if errors.As(err, &rerr) {
		code = rerr.ErrorCode
	}
	for _, c := range capacityCodes {
		if strings.EqualFold(code, c) || strings.Contains(text, `"`+c+`"`) || strings.Contains(text, "ERROR CODE: "+c) {
			return true
		}
	}
	notAllowed := strings.EqualFold(code, "OperationNotAllowed") || strings.Contains(text, `"OperationNotAllowed"`)
	return notAllowed && strings.Contains(strings.ToLower(text), "quota")
}

// isNotFound reports a 404 from Resource Manager.
func isNotFound(err error) bool {
	var rerr *azcore.ResponseError
	return errors.As(err, &rerr) && rerr.StatusCode == http.StatusNotFound
}

// classify wraps an SDK error: capacity and quota errors wrap cloud.ErrCapacity,
// authentication failures wrap cloud.ErrCredentials.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	if isCapacity(err) {
		return fmt.Errorf("%w: azure %s: %v", cloud.ErrCapacity, what, err)
	}
	var authErr *azidentity.AuthenticationFailedError
	var rerr *azcore.ResponseError
	if errors.As(err, &authErr) || (errors.As(err, &rerr) && rerr.StatusCode == http.StatusUnauthorized) {
		return fmt.Errorf("%w: azure %s: %v; %s", cloud.ErrCredentials, what, err, credentialHelp)
	}
	return fmt.Errorf("azure %s: %w", what, err)
}
