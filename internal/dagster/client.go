// Package dagster is a small client for the Dagster+ (Dagster Cloud) GraphQL
// API: it creates or updates branch deployments, deploys code locations and
// waits for them to load, speaking the same protocol as the dagster-cloud CLI.
package dagster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	defaultRequestTimeout = 60 * time.Second
	defaultPollInterval   = 3 * time.Second
	defaultUserAgent      = "dagster-branch-deploy"

	// maxRetries and the backoff follow the dagster-cloud CLI: up to three
	// retries, sleeping 0.5*2^n seconds (1 s, 2 s, 4 s) unless the server
	// sends Retry-After.
	maxRetries = 3

	defaultMaintenanceInterval = 30 * time.Second

	maxResponseBytes = 32 << 20
)

// Bounds on every wait the client makes on behalf of the server. Unlike the
// dagster-cloud CLI, which honours any Retry-After and waits up to 16 hours
// for a maintenance window, the client never keeps a CI job waiting for long
// without saying so: it logs every wait and gives up with an error that says
// what to do once a bound is reached.
const (
	// MaxRetryAfter is the longest Retry-After the client sleeps through. A
	// longer one fails the request at once with a *RetryAfterError.
	MaxRetryAfter = 60 * time.Second

	// DefaultRetryBudget bounds the time one request may spend on its
	// attempts and the sleeps between them (see WithRetryBudget). A retry
	// whose sleep would end past the budget is not made; the request fails
	// with a *RetryBudgetError. An attempt started within the budget may
	// still run for up to the request timeout.
	DefaultRetryBudget = 2 * time.Minute

	// DefaultMaintenanceWait is how long the client waits for a scheduled
	// maintenance to end when the maintenance body gives no timeout.
	DefaultMaintenanceWait = 10 * time.Minute

	// MaxMaintenanceWait caps a timeout given by the maintenance body.
	MaxMaintenanceWait = 30 * time.Minute

	// MaxMaintenanceRetryInterval caps the retry_interval of the
	// maintenance body.
	MaxMaintenanceRetryInterval = 60 * time.Second
)

// retryStatusCodes are the HTTP statuses retried when the body is not a
// GraphQL response. 500 is deliberately not retried.
var retryStatusCodes = map[int]bool{
	http.StatusBadGateway:         true,
	http.StatusServiceUnavailable: true,
	http.StatusGatewayTimeout:     true,
	http.StatusTooManyRequests:    true,
	http.StatusConflict:           true,
}

// Client talks to one Dagster+ organization. It is safe for concurrent use.
type Client struct {
	baseURL        string
	token          string
	httpClient     *http.Client
	logf           func(format string, args ...any)
	sleep          func(ctx context.Context, d time.Duration) error
	now            func() time.Time
	pollInterval   time.Duration
	requestTimeout time.Duration
	retryBudget    time.Duration
	userAgent      string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client used for requests. The per-request
// timeout (WithRequestTimeout) is applied on top of it.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.httpClient = h
		}
	}
}

// WithLogf sets the function that receives retry warnings and progress lines
// such as "Still waiting ...". The default discards them.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *Client) {
		if logf != nil {
			c.logf = logf
		}
	}
}

// WithSleep replaces the function used to wait between retries and polls.
// Tests use it to make waiting instant (and to observe the durations).
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) {
		if sleep != nil {
			c.sleep = sleep
		}
	}
}

// WithClock replaces the clock used to measure the wait and maintenance
// timeouts. The default is time.Now, whose readings carry the monotonic
// clock. Tests pair it with WithSleep to advance a fake clock.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithPollInterval sets how often WaitForLoad polls. The default is 3 s.
func WithPollInterval(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.pollInterval = d
		}
	}
}

// WithRequestTimeout sets the timeout of a single HTTP attempt. The default
// is 60 s.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.requestTimeout = d
		}
	}
}

// WithRetryBudget bounds the time one request may spend on its attempts
// and the sleeps between retries. The default is DefaultRetryBudget (2 min).
// The maintenance wait is bounded separately (DefaultMaintenanceWait,
// MaxMaintenanceWait).
func WithRetryBudget(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.retryBudget = d
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) {
		if ua != "" {
			c.userAgent = ua
		}
	}
}

// New returns a client for the organization at baseURL, for example
// https://acme.dagster.cloud (a trailing slash is ignored), authenticating
// with apiToken (an agent or user token).
func New(baseURL, apiToken string, opts ...Option) *Client {
	c := &Client{
		baseURL:        strings.TrimRight(strings.TrimSpace(baseURL), "/"),
		token:          apiToken,
		httpClient:     http.DefaultClient,
		logf:           func(string, ...any) {},
		sleep:          sleepContext,
		now:            time.Now,
		pollInterval:   defaultPollInterval,
		requestTimeout: defaultRequestTimeout,
		retryBudget:    DefaultRetryBudget,
		userAgent:      defaultUserAgent,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// OrgURL returns the default base URL of an organization,
// https://<organization>.dagster.cloud.
func OrgURL(organization string) string {
	return "https://" + organization + ".dagster.cloud"
}

// DeploymentURL returns the web URL of a deployment, <base>/<deployment>.
func (c *Client) DeploymentURL(deployment string) string {
	return c.baseURL + "/" + deployment
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// graphQLURL returns the endpoint for a scope: the organization when
// deployment is empty, else the deployment.
func (c *Client) graphQLURL(deployment string) string {
	if deployment == "" {
		return c.baseURL + "/graphql"
	}
	return c.baseURL + "/" + deployment + "/graphql"
}

type maintenance struct {
	Message       string   `json:"message"`
	Timeout       *float64 `json:"timeout"`
	RetryInterval *float64 `json:"retry_interval"`
}

// execute runs one operation and decodes its "data" into out. deployment
// selects the deployment scope ("" for the organization scope).
func (c *Client) execute(ctx context.Context, deployment, operation string, vars map[string]any, out any) error {
	query, ok := operations[operation]
	if !ok {
		return fmt.Errorf("unknown operation %q", operation)
	}
	if c.token == "" {
		return errors.New("no Dagster+ API token configured: set the `dagster_cloud_api_token` input " +
			"(DAGSTER_CLOUD_API_TOKEN) to an agent token or user token for the organization")
	}
	if vars == nil {
		vars = map[string]any{}
	}
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("%s: encoding request: %w", operation, err)
	}
	endpoint := c.graphQLURL(deployment)
	start := c.now()
	for attempts := 1; ; attempts++ {
		data, err := c.executeRetry(ctx, endpoint, deployment, operation, body, isMutation(query))
		var m *maintenanceError
		if errors.As(err, &m) {
			limit, interval := m.timeout(), m.interval()
			elapsed := c.now().Sub(start)
			remaining := limit - elapsed
			if remaining <= 0 {
				return &MaintenanceError{Operation: operation, URL: endpoint, Message: m.m.Message,
					Waited: elapsed, Attempts: attempts}
			}
			wait := min(interval, remaining)
			c.logf("Dagster+ is under scheduled maintenance (%s): request %s to %s was not served. "+
				"Retrying in %s; will keep waiting at most %s more for the maintenance to end...",
				m.msg(), operation, endpoint, formatWait(wait), formatWait(remaining))
			if err := c.sleep(ctx, wait); err != nil {
				return fmt.Errorf("%s: waiting for Dagster+ maintenance to end: %w", operation, err)
			}
			continue
		}
		if err != nil {
			return c.redact(err)
		}
		if out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("%s: decoding response data from %s: %w (data: %s)",
					operation, endpoint, err, truncate(string(data), maxBodySnippet))
			}
		}
		return nil
	}
}

// maintenanceError carries a maintenance body; execute handles it.
type maintenanceError struct{ m maintenance }

func (e *maintenanceError) Error() string {
	return "Dagster+ is under scheduled maintenance: " + e.msg()
}

func (e *maintenanceError) msg() string {
	return maintenanceMessage(e.m.Message)
}

func maintenanceMessage(m string) string {
	if m = strings.TrimSpace(m); m == "" {
		return "no details given"
	}
	return m
}

// timeout is how long to keep retrying since the first attempt: the body's
// timeout capped at MaxMaintenanceWait, or DefaultMaintenanceWait when the
// body gives none, 0 (the dagster-cloud CLI takes 0 for unset: `timeout or
// DEFAULT_MAINTENANCE_TIMEOUT`) or a negative number.
func (e *maintenanceError) timeout() time.Duration {
	if e.m.Timeout == nil || *e.m.Timeout <= 0 {
		return DefaultMaintenanceWait
	}
	return secondsDuration(*e.m.Timeout, MaxMaintenanceWait)
}

// interval is the sleep between maintenance retries, capped at
// MaxMaintenanceRetryInterval; 0, a negative or no retry_interval means
// the default 30 s, as in the CLI.
func (e *maintenanceError) interval() time.Duration {
	if e.m.RetryInterval == nil || *e.m.RetryInterval <= 0 {
		return defaultMaintenanceInterval
	}
	return secondsDuration(*e.m.RetryInterval, MaxMaintenanceRetryInterval)
}

// secondsDuration converts seconds to a duration no longer than limit.
func secondsDuration(secs float64, limit time.Duration) time.Duration {
	if secs >= limit.Seconds() {
		return limit
	}
	return time.Duration(secs * float64(time.Second))
}

// retryableError marks a failure that may be retried, with the delay the
// server asked for (retryAfter < 0 when it did not say).
type retryableError struct {
	err        error
	retryAfter time.Duration
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// executeRetry sends the request, retrying retryable failures up to
// maxRetries times within the retry budget. It returns the raw "data" of the
// response. A Retry-After longer than MaxRetryAfter is not waited for.
func (c *Client) executeRetry(ctx context.Context, endpoint, deployment, operation string, body []byte, mutation bool) (json.RawMessage, error) {
	start := c.now()
	for retry := 0; ; retry++ {
		data, err := c.attempt(ctx, endpoint, deployment, operation, body, mutation)
		var r *retryableError
		if !errors.As(err, &r) {
			return data, err
		}
		if r.retryAfter > MaxRetryAfter {
			status := 0
			var he *HTTPError
			if errors.As(r.err, &he) {
				status = he.StatusCode
			}
			return nil, &RetryAfterError{
				Operation: operation, URL: endpoint, StatusCode: status,
				RetryAfter: r.retryAfter, At: c.now().Add(r.retryAfter).UTC().Round(time.Second),
				Max: MaxRetryAfter, Last: r.err,
			}
		}
		if retry >= maxRetries {
			return nil, fmt.Errorf("%s: %w", operation, &RetryError{URL: endpoint, Retries: maxRetries, Last: r.err})
		}
		delay, why := r.retryAfter, " as asked by its Retry-After header"
		if delay < 0 {
			delay, why = time.Duration(500*(1<<(retry+1)))*time.Millisecond, ""
		}
		elapsed := c.now().Sub(start)
		if elapsed+delay > c.retryBudget {
			return nil, &RetryBudgetError{
				Operation: operation, URL: endpoint, Budget: c.retryBudget, Elapsed: elapsed,
				Attempts: retry + 1, NextWait: delay, Last: r.err,
			}
		}
		c.logf("Error in Dagster+ request %s to %s (%s). Retrying in %s%s (retry %d of %d; %s left of the %s retry budget)...",
			operation, endpoint, retryReason(r.err), formatWait(delay), why, retry+1, maxRetries,
			formatWait(c.retryBudget-elapsed), formatWait(c.retryBudget))
		if err := c.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("%s: waiting to retry after %v: %w", operation, r.err, err)
		}
	}
}

// formatWait renders a wait: whole seconds from one second up (e.g. "1m30s"),
// milliseconds below.
func formatWait(d time.Duration) string {
	if d >= time.Second || d <= -time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

func retryReason(err error) string {
	var he *HTTPError
	if errors.As(err, &he) {
		return fmt.Sprintf("HTTP %d %s", he.StatusCode, http.StatusText(he.StatusCode))
	}
	return err.Error()
}

// attempt performs a single HTTP exchange and classifies the outcome the way
// the dagster-cloud CLI does (§1.5 of the API notes):
//  1. a body that is not a JSON object counts as {};
//  2. without errors/data/maintenance, a retryable status is retried, any
//     other status is an *HTTPError;
//  3. a maintenance body is reported as *maintenanceError;
//  4. an "errors" key is a *GraphQLError, never retried, whatever its value
//     ([], null or not a list too: the CLI fails on `"errors" in result`);
//  5. otherwise "data" is returned, whatever the HTTP status.
func (c *Client) attempt(ctx context.Context, endpoint, deployment, operation string, body []byte, mutation bool) (json.RawMessage, error) {
	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%s: building request for %s: %w", operation, endpoint, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("Dagster-Cloud-Api-Token", c.token)
	req.Header.Set("Dagster-Cloud-Scope", "deployment")
	if deployment != "" {
		req.Header.Set("Dagster-Cloud-Deployment", deployment)
	}

	resp, err := c.httpClient.Do(req)
	var raw []byte
	if err == nil {
		raw, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		resp.Body.Close()
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s: request to %s: %w", operation, endpoint, ctxErr)
		}
		if isTimeout(err) && !isDialError(err) {
			// A read timeout: only safe to repeat for queries.
			err = fmt.Errorf("%w (no response within %s)", err, c.requestTimeout)
			if mutation {
				return nil, fmt.Errorf("%s: %w; the mutation was not retried because it may have been applied", operation, err)
			}
		}
		return nil, &retryableError{err: err, retryAfter: -1}
	}

	raw = c.redactBytes(raw)
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		fields = nil // not a JSON object: as {}
	}
	data, hasData := fields["data"]
	errs, hasErrors := fields["errors"]
	maint, hasMaintenance := fields["maintenance"]

	switch {
	case !hasData && !hasErrors && !hasMaintenance:
		he := &HTTPError{StatusCode: resp.StatusCode, URL: endpoint, Body: truncate(string(raw), maxBodySnippet)}
		if retryStatusCodes[resp.StatusCode] {
			return nil, &retryableError{err: he, retryAfter: c.retryAfter(resp.Header.Get("Retry-After"))}
		}
		return nil, fmt.Errorf("%s: %w", operation, he)
	case hasMaintenance:
		// Fields of the wrong type are skipped and take their defaults.
		var m maintenance
		_ = json.Unmarshal(maint, &m)
		return nil, &maintenanceError{m: m}
	case hasErrors:
		return nil, &GraphQLError{
			Operation: operation, URL: endpoint, StatusCode: resp.StatusCode,
			Messages: graphQLErrors(errs),
		}
	case len(data) == 0 || string(data) == "null":
		return nil, fmt.Errorf("%s: %w", operation,
			&HTTPError{StatusCode: resp.StatusCode, URL: endpoint, Body: truncate(string(raw), maxBodySnippet)})
	}
	return data, nil
}

// graphQLErrors describes the value of a response's "errors" key: the
// messages of a list of errors, else the value itself.
func graphQLErrors(raw json.RawMessage) []string {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return errorMessages(list)
	}
	return []string{fmt.Sprintf(`the response has "errors": %s, and a response with an "errors" key fails, as it does in the dagster-cloud CLI`,
		truncate(string(raw), maxBodySnippet))}
}

// errorMessages extracts the "message" of each GraphQL error, falling back
// to the raw JSON for malformed entries.
func errorMessages(errs []json.RawMessage) []string {
	msgs := make([]string, 0, len(errs))
	for _, raw := range errs {
		var e struct {
			Message string `json:"message"`
			Path    []any  `json:"path"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			msgs = append(msgs, truncate(string(raw), maxBodySnippet))
			continue
		}
		msg := e.Message
		if len(e.Path) > 0 {
			parts := make([]string, len(e.Path))
			for i, p := range e.Path {
				parts[i] = fmt.Sprint(p)
			}
			msg += " (at " + strings.Join(parts, ".") + ")"
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// farFuture stands for a Retry-After too long to represent.
const farFuture = 100 * 365 * 24 * time.Hour

// retryAfter parses a Retry-After header: delay seconds (digits only) or
// an HTTP date. It returns -1, and the retry then sleeps the backoff (1 s,
// 2 s, 4 s), when the header is absent or invalid (a fraction, a sign) or
// asks for no wait: 0, or a date that has passed. So does the dagster-cloud
// CLI, which parses `^\s*[0-9]+\s*$` or a date, floors it at 0 and sleeps
// the backoff when that is falsy.
func (c *Client) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return -1
	}
	if strings.Trim(h, "0123456789") == "" {
		secs, err := strconv.ParseInt(h, 10, 64)
		switch {
		case err != nil || secs > int64(farFuture/time.Second):
			// Far beyond any bound, and safe from overflowing a Duration.
			return farFuture
		case secs == 0:
			return -1
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(c.now()); d > 0 {
			return d
		}
	}
	return -1
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// redactBytes removes the API token from a response body before any of it
// can end up in an error message.
func (c *Client) redactBytes(b []byte) []byte {
	if c.token == "" {
		return b
	}
	return bytes.ReplaceAll(b, []byte(c.token), []byte("[REDACTED]"))
}

// redact removes the API token from an error message, in case a server or a
// transport ever echoes it back.
func (c *Client) redact(err error) error {
	if err == nil || c.token == "" || !strings.Contains(err.Error(), c.token) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), c.token, "[REDACTED]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
