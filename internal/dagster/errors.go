package dagster

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tokenHint is appended to every error caused by Dagster+ rejecting the
// credentials.
const tokenHint = "Dagster+ rejected the API token: check the `dagster_cloud_api_token` input " +
	"(DAGSTER_CLOUD_API_TOKEN) and make sure it is an agent token or user token " +
	"for this Dagster+ organization"

// maxBodySnippet bounds how much of a response body is kept in errors.
const maxBodySnippet = 500

// HTTPError is an HTTP response that did not carry a GraphQL result: a
// non-2xx status without a GraphQL body, or a 2xx response whose body is not
// a GraphQL response at all.
type HTTPError struct {
	StatusCode int
	URL        string
	Body       string // truncated to about 500 characters
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("Dagster+ API at %s %s", e.URL, e.describe())
}

// Unauthorized reports whether the server rejected the credentials.
func (e *HTTPError) Unauthorized() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// describe renders the error without the URL.
func (e *HTTPError) describe() string {
	var b strings.Builder
	if e.StatusCode >= 200 && e.StatusCode < 300 {
		fmt.Fprintf(&b, "returned an unexpected (non-GraphQL) response with HTTP %d", e.StatusCode)
	} else {
		fmt.Fprintf(&b, "returned HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Body == "" {
		b.WriteString(" and an empty body")
	} else {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	if e.Unauthorized() {
		b.WriteString(". " + tokenHint)
	}
	return b.String()
}

// GraphQLError is a response with a top-level "errors" array: the server
// rejected the request as a whole (invalid document or variables, internal
// error). It is never retried.
type GraphQLError struct {
	Operation  string
	URL        string
	StatusCode int
	Messages   []string
}

func (e *GraphQLError) Error() string {
	msg := fmt.Sprintf("%s: Dagster+ API at %s returned GraphQL errors: %s",
		e.Operation, e.URL, strings.Join(e.Messages, "; "))
	if e.Unauthorized() {
		msg += " (HTTP " + strconv.Itoa(e.StatusCode) + "). " + tokenHint
	}
	return msg
}

// Unauthorized reports whether the errors came with HTTP 401 or 403.
func (e *GraphQLError) Unauthorized() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// ResultError is an operation whose result union resolved to an error type
// such as PythonError, UnauthorizedError, InvalidLocationError or
// DeploymentLimitError.
type ResultError struct {
	Operation string
	Typename  string
	Message   string
	Errors    []string // InvalidLocationError.errors
}

func (e *ResultError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: Dagster+ returned %s", e.Operation, e.Typename)
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimRight(e.Message, "\n"))
	}
	switch e.Typename {
	case "InvalidLocationError":
		if len(e.Errors) > 0 {
			b.WriteString("\nError in location config:\n")
			b.WriteString(strings.Join(e.Errors, "\n"))
		}
	case "UnauthorizedError":
		b.WriteString(". " + tokenHint + " (with permission to deploy to this deployment)")
	case "DeploymentLimitError":
		b.WriteString(". The organization has reached its deployment limit; close or delete unused branch deployments")
	}
	return b.String()
}

// Unauthorized reports whether the result was an UnauthorizedError.
func (e *ResultError) Unauthorized() bool { return e.Typename == "UnauthorizedError" }

// RetryError is returned when a request still failed after every retry.
// It unwraps to the last failure (often an *HTTPError).
type RetryError struct {
	URL     string
	Retries int
	Last    error
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("Dagster+ API at %s: gave up after %d retries: %s", e.URL, e.Retries, describeLast(e.Last))
}

func (e *RetryError) Unwrap() error { return e.Last }

// describeLast renders the last failure of a retried request without
// repeating the URL of an *HTTPError.
func describeLast(err error) string {
	if err == nil {
		return "unknown error"
	}
	if he, ok := err.(*HTTPError); ok {
		if he.StatusCode >= 200 && he.StatusCode < 300 {
			return he.describe()
		}
		return "HTTP " + strings.TrimPrefix(he.describe(), "returned HTTP ")
	}
	return err.Error()
}

// RetryAfterError is returned, without waiting, when Dagster+ answers a
// retryable status with a Retry-After longer than the client waits
// (MaxRetryAfter). It unwraps to the failure that carried the header
// (usually an *HTTPError).
type RetryAfterError struct {
	Operation  string
	URL        string
	StatusCode int           // HTTP status of the answer, 0 if unknown
	RetryAfter time.Duration // the delay Dagster+ asked for
	At         time.Time     // when Dagster+ asked to be retried, in UTC
	Max        time.Duration // the longest Retry-After the client waits for
	Last       error
}

func (e *RetryAfterError) Error() string {
	status := ""
	if e.StatusCode != 0 {
		status = fmt.Sprintf(" answered HTTP %d %s and", e.StatusCode, http.StatusText(e.StatusCode))
	}
	at := e.At.UTC().Format(time.RFC3339)
	return fmt.Sprintf("%s: Dagster+ API at %s%s asked to be retried after %s (at %s), "+
		"longer than the %s this action waits for a retry, so the request was not retried: "+
		"re-run the job after %s",
		e.Operation, e.URL, status, e.RetryAfter.Round(time.Second), at, e.Max, at)
}

func (e *RetryAfterError) Unwrap() error { return e.Last }

// RetryBudgetError is returned when a request kept failing with retryable
// errors and the next retry would have taken it past its retry budget
// (DefaultRetryBudget, WithRetryBudget). It unwraps to the last failure.
type RetryBudgetError struct {
	Operation string
	URL       string
	Budget    time.Duration // the retry budget of one request
	Elapsed   time.Duration // time spent on attempts and sleeps so far
	Attempts  int           // attempts made
	NextWait  time.Duration // the sleep that would have exceeded the budget
	Last      error
}

func (e *RetryBudgetError) Error() string {
	return fmt.Sprintf("%s: Dagster+ API at %s: gave up after %d attempts in %s: the %s retry budget "+
		"was spent (the next retry was due in %s); last error: %s. "+
		"Dagster+ may be degraded: re-run the job later",
		e.Operation, e.URL, e.Attempts, formatWait(e.Elapsed), formatWait(e.Budget), formatWait(e.NextWait),
		describeLast(e.Last))
}

func (e *RetryBudgetError) Unwrap() error { return e.Last }

// MaintenanceError is returned when Dagster+ was still under scheduled
// maintenance after the client had waited as long as it does
// (DefaultMaintenanceWait, or the timeout of the maintenance body capped at
// MaxMaintenanceWait).
type MaintenanceError struct {
	Operation string
	URL       string
	Message   string        // the maintenance message, "" if none was given
	Waited    time.Duration // since the first attempt
	Attempts  int           // maintenance answers received
}

func (e *MaintenanceError) Error() string {
	return fmt.Sprintf("%s: Dagster+ is under scheduled maintenance: %s. The API at %s still reported it "+
		"after waiting %s (%d attempts): re-run the job when the maintenance has ended",
		e.Operation, strings.TrimRight(maintenanceMessage(e.Message), "."), e.URL, formatWait(e.Waited), e.Attempts)
}

// LoadError reports code locations that loaded with an error. Results holds
// every requested location, including the ones that loaded fine.
type LoadError struct {
	Results []LocationResult
}

func (e *LoadError) Error() string {
	var parts []string
	for _, r := range e.Results {
		if r.Error != "" {
			parts = append(parts, fmt.Sprintf("code location %s failed to load:\n%s", r.Name, r.Error))
		}
	}
	if len(parts) == 0 {
		return "code locations failed to load"
	}
	return strings.Join(parts, "\n\n")
}

// truncate shortens s to about n bytes, respecting UTF-8 boundaries.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d bytes truncated)", len(s)-cut)
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
