package dagster

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"strings"
	"time"
)

// Agent types of a deployment (DeploymentAgentType), as AgentType returns
// them.
const (
	AgentTypeHybrid     = "HYBRID"
	AgentTypeServerless = "SERVERLESS"
)

// Operations of AgentType and ServerlessRegistry. DeploymentInfoQuery and
// CliGetEcrInfo are named and selected as in the dagster-cloud CLI (gql.py
// AGENT_TYPE_QUERY, GET_ECR_CREDS_QUERY); CliGetEcrInfo selects what the CLI
// selected before registryIsHarbor, which the reference schema lacks (see
// opServerlessRegistryIsHarbor). CliServerlessStatus is this client's own.
const (
	opDeploymentInfoQuery        = "DeploymentInfoQuery"
	opGetEcrInfo                 = "CliGetEcrInfo"
	opServerlessStatus           = "CliServerlessStatus"
	opServerlessRegistryIsHarbor = "CliServerlessRegistryIsHarbor"
)

// The retry rule for registry information that is not available yet, as the
// dagster-cloud action's registry_info step has it: up to 6 attempts, 10 s
// apart, then "your serverless deployment may still be activating".
const (
	RegistryInfoAttempts      = 6
	RegistryInfoRetryInterval = 10 * time.Second
)

// Operations that the Dagster+ server serves but the reference schema
// (dagster-plus-schema.graphql) lacks, because that schema lags the server.
// They cannot be validated against the reference schema, so they are kept
// out of Operations() and out of the operations/ files the client loads
// unconditionally; each is sent only as an optional follow-up whose failure
// with "field unknown" is handled (see registryIsHarbor).
//
//go:embed operations/ahead/*.graphql
var aheadOperationFiles embed.FS

var aheadOperations = mustLoadAheadOperations()

func mustLoadAheadOperations() map[string]string {
	const dir = "operations/ahead"
	entries, err := fs.ReadDir(aheadOperationFiles, dir)
	if err != nil {
		panic(fmt.Sprintf("dagster: reading embedded operations: %v", err))
	}
	ops := make(map[string]string, len(entries))
	for _, e := range entries {
		b, err := fs.ReadFile(aheadOperationFiles, path.Join(dir, e.Name()))
		if err != nil {
			panic(fmt.Sprintf("dagster: reading embedded operation %s: %v", e.Name(), err))
		}
		ops[strings.TrimSuffix(e.Name(), ".graphql")] = string(b)
	}
	if _, ok := ops[opServerlessRegistryIsHarbor]; !ok {
		panic("dagster: missing embedded operation " + opServerlessRegistryIsHarbor)
	}
	return ops
}

// ServerAheadOperations returns the operations the client may send that
// select fields the reference schema lacks (the server has them; see
// dagsteremu's schema_ext.graphql), keyed by operation name. The returned
// map is a copy.
func ServerAheadOperations() map[string]string {
	return maps.Clone(aheadOperations)
}

// AgentType returns the agent type of a deployment, "HYBRID" or
// "SERVERLESS", with the query `dagster-cloud ci deploy` uses to pick the
// agent heartbeat timeout (currentDeployment { agentType }, deployment
// scope).
func (c *Client) AgentType(ctx context.Context, deployment string) (string, error) {
	if strings.TrimSpace(deployment) == "" {
		return "", errors.New("reading the agent type: no deployment given (currentDeployment needs a deployment scope)")
	}
	var data struct {
		CurrentDeployment *struct {
			AgentType string `json:"agentType"`
		} `json:"currentDeployment"`
	}
	if err := c.execute(ctx, deployment, opDeploymentInfoQuery, nil, &data); err != nil {
		return "", fmt.Errorf("reading the agent type of deployment %s: %w", deployment, err)
	}
	if data.CurrentDeployment == nil {
		return "", fmt.Errorf("reading the agent type of deployment %s: Dagster+ returned no currentDeployment", deployment)
	}
	switch t := data.CurrentDeployment.AgentType; t {
	case AgentTypeHybrid, AgentTypeServerless:
		return t, nil
	default:
		return "", fmt.Errorf("reading the agent type of deployment %s: Dagster+ returned agentType %q, "+
			"which this action does not know (it knows %s and %s)", deployment, t, AgentTypeHybrid, AgentTypeServerless)
	}
}

// ServerlessRegistry is the image registry Dagster+ hands out to a
// Serverless organization, with short-lived push credentials.
type ServerlessRegistry struct {
	// URL is registryUrl. For ECR it is an image repository: images go to
	// URL:tag. For Harbor (IsHarbor) it is a deployment-scoped prefix
	// under which each code location has its own repository: images go to
	// URL/<location>:tag.
	URL string
	// Region is awsRegion.
	Region string
	// Username and Password are awsAuthToken decoded: the token is
	// base64("<user>:<password>") ("AWS:<password>" for ECR). Password is a
	// secret: mask it before anything can print it. String and GoString
	// redact it.
	Username string
	Password string
	// AllowCustomBase is registryAllowCustomBase (null counts as false):
	// whether images may be built FROM a base image other than the
	// default python:<version>-slim.
	AllowCustomBase bool
	// IsHarbor is registryIsHarbor, false when unknown (see HarborKnown).
	IsHarbor bool
	// HarborKnown reports whether Dagster+ was asked registryIsHarbor and
	// answered. It is not asked for an ECR registry URL, and a server
	// without the field cannot answer; IsHarbor is false then, the layout
	// of the dagster-cloud CLI before the field existed.
	HarborKnown bool
}

// Host returns the registry host of URL (the part before the first "/"),
// the server to log in to.
func (r ServerlessRegistry) Host() string {
	host, _, _ := strings.Cut(r.URL, "/")
	return host
}

// String describes the registry without its password.
func (r ServerlessRegistry) String() string {
	pw := ""
	if r.Password != "" {
		pw = "[REDACTED]"
	}
	return fmt.Sprintf("{URL:%s Region:%s Username:%s Password:%s AllowCustomBase:%t IsHarbor:%t HarborKnown:%t}",
		r.URL, r.Region, r.Username, pw, r.AllowCustomBase, r.IsHarbor, r.HarborKnown)
}

// GoString is String, so that %#v does not print the password either.
func (r ServerlessRegistry) GoString() string { return "dagster.ServerlessRegistry" + r.String() }

// RegistryNotAvailableError is returned by ServerlessRegistry when Dagster+
// still gave no registry URL or credentials after RegistryInfoAttempts
// attempts, RegistryInfoRetryInterval apart: the Serverless deployment may
// still be activating.
type RegistryNotAvailableError struct {
	Deployment string        // "" for the organization scope
	Attempts   int           // attempts made
	Waited     time.Duration // time spent since the first attempt
	Status     string        // the last Serverless agent status read, "" if unknown
}

func (e *RegistryNotAvailableError) Error() string {
	status := ""
	if e.Status != "" {
		status = fmt.Sprintf(" (Serverless agent status %s)", e.Status)
	}
	return fmt.Sprintf("No serverless registry information found - your serverless deployment may still be activating: "+
		"Dagster+ gave no registry URL or credentials for %s in %d attempts over %s%s. "+
		"Re-run the job in a few minutes; if this persists, check the Serverless agent of the organization in Dagster+",
		scopeName(e.Deployment), e.Attempts, formatWait(e.Waited), status)
}

// ServerlessNotEnabledError is returned by ServerlessRegistry when the
// organization's Serverless agent is not enabled (status INACTIVE): Dagster+
// hands out no registry, as for a Hybrid organization.
type ServerlessNotEnabledError struct {
	Deployment string // "" for the organization scope
	Status     string // the Serverless agent status, e.g. INACTIVE
}

func (e *ServerlessNotEnabledError) Error() string {
	return fmt.Sprintf("Dagster+ Serverless is not enabled for this organization (Serverless agent status %s), "+
		"so Dagster+ hands out no image registry for %s. A Hybrid organization's images go to the registries "+
		"you run: give every location that is built a build.registry in dagster_cloud.yaml (or defaults.build.registry) "+
		"and the credentials to push to it", e.Status, scopeName(e.Deployment))
}

// ServerlessStatusError is returned by ServerlessRegistry when the
// organization's Serverless agent is in a failed or deleted state
// (PROVISION_ERROR, UPDATE_ERROR, DELETE_ERROR, DELETING) and Dagster+ gave
// no registry. It unwraps to a *ResultError with the agent's PythonError
// when Dagster+ reported one.
type ServerlessStatusError struct {
	Deployment string
	Status     string
	Err        *ResultError // Serverless.error, nil if none
}

func (e *ServerlessStatusError) Error() string {
	msg := fmt.Sprintf("Dagster+ gave no serverless registry for %s: the organization's Serverless agent is in state %s",
		scopeName(e.Deployment), e.Status)
	if e.Err != nil && e.Err.Message != "" {
		msg += ": " + strings.TrimRight(e.Err.Message, "\n")
	}
	return msg + ". Retrying will not help until it is fixed: check the Serverless agent in Dagster+ or contact Dagster+ support"
}

func (e *ServerlessStatusError) Unwrap() error {
	if e.Err == nil {
		return nil
	}
	return e.Err
}

// RegistryTokenError is returned by ServerlessRegistry when awsAuthToken is
// not base64 of "<user>:<password>". The token is not part of the message.
type RegistryTokenError struct {
	Reason string
}

func (e *RegistryTokenError) Error() string {
	return "Dagster+ returned a serverless registry token (awsAuthToken) that is not base64 of <user>:<password>: " + e.Reason
}

func scopeName(deployment string) string {
	if deployment == "" {
		return "the organization"
	}
	return "deployment " + deployment
}

// ServerlessRegistry returns the registry Dagster+ hands out for the images
// of Serverless code locations, and its push credentials, with the query of
// `dagster-cloud serverless registry-info` and `ci build` (CliGetEcrInfo).
// deployment is the deployment the images are for (the newest
// dagster-cloud CLI asks at that deployment's scope; Harbor registry URLs
// are deployment-scoped); "" asks at the organization scope.
//
// When the answer has no registry URL or no credentials (or the query fails
// with GraphQL errors), the client reads the Serverless agent status
// (CliServerlessStatus, not part of upstream): INACTIVE yields a
// *ServerlessNotEnabledError and a failed or deleted agent a
// *ServerlessStatusError, at once (after GraphQL errors, anything but
// INACTIVE returns those errors). Otherwise (activating, or the status
// cannot be read) it retries as the dagster-cloud action does: up to
// RegistryInfoAttempts attempts, RegistryInfoRetryInterval apart, each wait
// logged, then a *RegistryNotAvailableError.
//
// For a registry URL that is not an ECR repository, the client then asks
// registryIsHarbor with a separate, optional query (the reference schema
// lacks the field, so it is not part of CliGetEcrInfo): a server without
// the field leaves IsHarbor false and HarborKnown false, as in the
// dagster-cloud CLI before the field existed, which used {registryUrl}:{tag}.
// ECR registries are not asked: they are never Harbor.
//
// The password is never logged or put into errors; the caller must mask it
// (e.g. ::add-mask::) before anything else can print it.
func (c *Client) ServerlessRegistry(ctx context.Context, deployment string) (ServerlessRegistry, error) {
	start := c.now()
	readStatus := true
	lastStatus := ""
	for attempt := 1; ; attempt++ {
		info, err := c.ecrInfo(ctx, deployment)
		if err != nil {
			// A server may refuse `serverless` outright for an
			// organization without Serverless; if the status says so,
			// say that instead of the bare GraphQL error.
			var ge *GraphQLError
			if errors.As(err, &ge) && !ge.Unauthorized() {
				if st, serr := c.serverlessStatus(ctx, deployment); serr == nil && st.Status == "INACTIVE" {
					return ServerlessRegistry{}, &ServerlessNotEnabledError{Deployment: deployment, Status: st.Status}
				}
			}
			return ServerlessRegistry{}, fmt.Errorf("reading the serverless registry of %s: %w", scopeName(deployment), err)
		}
		if info.available() {
			reg, err := info.registry()
			if err != nil {
				return ServerlessRegistry{}, err
			}
			if !isECRRepository(reg.URL) {
				if reg.IsHarbor, reg.HarborKnown, err = c.registryIsHarbor(ctx, deployment); err != nil {
					return ServerlessRegistry{}, fmt.Errorf("reading whether the serverless registry %s of %s is Harbor: %w",
						reg.URL, scopeName(deployment), err)
				}
			}
			return reg, nil
		}

		if readStatus {
			st, err := c.serverlessStatus(ctx, deployment)
			if err != nil {
				// The status only sharpens the error; without it, retry as
				// the dagster-cloud action does.
				readStatus = false
				c.logf("Could not read the Serverless agent status of %s (%v); treating the missing registry "+
					"information as a deployment that is still activating.", scopeName(deployment), err)
			} else {
				lastStatus = st.Status
				switch st.Status {
				case "INACTIVE":
					return ServerlessRegistry{}, &ServerlessNotEnabledError{Deployment: deployment, Status: st.Status}
				case "PROVISION_ERROR", "UPDATE_ERROR", "DELETE_ERROR", "DELETING":
					e := &ServerlessStatusError{Deployment: deployment, Status: st.Status}
					if st.Error != nil && st.Error.Message != "" {
						e.Err = &ResultError{Operation: opServerlessStatus, Typename: "PythonError", Message: st.Error.Message}
					}
					return ServerlessRegistry{}, e
				}
			}
		}

		if attempt >= RegistryInfoAttempts {
			return ServerlessRegistry{}, &RegistryNotAvailableError{
				Deployment: deployment, Attempts: attempt, Waited: c.now().Sub(start), Status: lastStatus,
			}
		}
		status := ""
		if lastStatus != "" {
			status = ", Serverless agent status " + lastStatus
		}
		c.logf("Could not load registry information - your serverless deployment may still be activating "+
			"(Dagster+ gave no %s for %s%s). Retrying in %s (attempt %d of %d)...",
			info.missing(), scopeName(deployment), status, formatWait(RegistryInfoRetryInterval), attempt, RegistryInfoAttempts)
		if err := c.sleep(ctx, RegistryInfoRetryInterval); err != nil {
			return ServerlessRegistry{}, fmt.Errorf("waiting for the serverless registry of %s: %w", scopeName(deployment), err)
		}
	}
}

// ecrInfoData is the answer of CliGetEcrInfo.
type ecrInfoData struct {
	AWSRegion               *string `json:"awsRegion"`
	AWSAuthToken            *string `json:"awsAuthToken"`
	RegistryAllowCustomBase *bool   `json:"registryAllowCustomBase"`
	RegistryURL             *string `json:"registryUrl"`
}

func (d ecrInfoData) url() string   { return strings.TrimSpace(deref(d.RegistryURL)) }
func (d ecrInfoData) token() string { return strings.TrimSpace(deref(d.AWSAuthToken)) }

// available reports whether the answer carries a registry and credentials;
// like the dagster-cloud CLI, one without the other counts as neither.
func (d ecrInfoData) available() bool { return d.url() != "" && d.token() != "" }

func (d ecrInfoData) missing() string {
	switch {
	case d.url() == "" && d.token() == "":
		return "registry URL and no credentials"
	case d.url() == "":
		return "registry URL"
	}
	return "credentials"
}

func (d ecrInfoData) registry() (ServerlessRegistry, error) {
	user, password, err := decodeRegistryToken(d.token())
	if err != nil {
		return ServerlessRegistry{}, err
	}
	return ServerlessRegistry{
		URL:             strings.TrimRight(d.url(), "/"),
		Region:          deref(d.AWSRegion),
		Username:        user,
		Password:        password,
		AllowCustomBase: d.RegistryAllowCustomBase != nil && *d.RegistryAllowCustomBase,
	}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// decodeRegistryToken splits base64("<user>:<password>") at the first ":"
// (an ECR token's password has no ":"; splitting at the first one keeps any
// in a password whole).
func decodeRegistryToken(tok string) (user, password string, err error) {
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(tok); err != nil {
			return "", "", &RegistryTokenError{Reason: "it is not valid base64"}
		}
	}
	user, password, ok := strings.Cut(string(raw), ":")
	switch {
	case !ok:
		return "", "", &RegistryTokenError{Reason: "the decoded token has no \":\""}
	case user == "" || password == "":
		return "", "", &RegistryTokenError{Reason: "the decoded token has an empty user or password"}
	}
	return user, password, nil
}

func (c *Client) ecrInfo(ctx context.Context, deployment string) (ecrInfoData, error) {
	// Decoded by hand from the raw data, so that a decoding error cannot
	// quote the credentials back.
	var raw json.RawMessage
	if err := c.execute(ctx, deployment, opGetEcrInfo, nil, &raw); err != nil {
		return ecrInfoData{}, err
	}
	var data struct {
		Serverless *ecrInfoData `json:"serverless"`
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		return ecrInfoData{}, fmt.Errorf("%s: Dagster+ returned a serverless answer this client cannot read: %v", opGetEcrInfo, err)
	}
	if data.Serverless == nil {
		return ecrInfoData{}, nil
	}
	return *data.Serverless, nil
}

type serverlessStatusData struct {
	Status string `json:"status"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

func (c *Client) serverlessStatus(ctx context.Context, deployment string) (serverlessStatusData, error) {
	var data struct {
		Serverless *serverlessStatusData `json:"serverless"`
	}
	if err := c.execute(ctx, deployment, opServerlessStatus, nil, &data); err != nil {
		return serverlessStatusData{}, err
	}
	if data.Serverless == nil || data.Serverless.Status == "" {
		return serverlessStatusData{}, errors.New("Dagster+ returned no Serverless agent status")
	}
	return *data.Serverless, nil
}

// registryIsHarbor asks the optional registryIsHarbor. A server that does
// not have the field answers with GraphQL errors naming it; that is not an
// error: the answer is then unknown (false, false).
func (c *Client) registryIsHarbor(ctx context.Context, deployment string) (isHarbor, known bool, err error) {
	var data struct {
		Serverless *struct {
			RegistryIsHarbor *bool `json:"registryIsHarbor"`
		} `json:"serverless"`
	}
	err = c.executeAhead(ctx, deployment, opServerlessRegistryIsHarbor, &data)
	var ge *GraphQLError
	if errors.As(err, &ge) && !ge.Unauthorized() && mentionsField(ge.Messages, "registryIsHarbor") {
		c.logf("Dagster+ does not know Serverless.registryIsHarbor (%s): pushing with the ECR image layout "+
			"{registryUrl}:{tag}, as dagster-cloud CLIs before that field did.", strings.Join(ge.Messages, "; "))
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if data.Serverless == nil || data.Serverless.RegistryIsHarbor == nil {
		// null: the CLI's .get("registryIsHarbor", False) reads a missing
		// key as false; a null is no answer either.
		return false, false, nil
	}
	return *data.Serverless.RegistryIsHarbor, true, nil
}

func mentionsField(msgs []string, field string) bool {
	for _, m := range msgs {
		if strings.Contains(m, field) {
			return true
		}
	}
	return false
}

// ecrRepository matches the registry URLs of Amazon ECR private
// repositories: <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]/<repo>.
var ecrRepository = regexp.MustCompile(`^[0-9]{12}\.dkr\.ecr(-fips)?\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/`)

func isECRRepository(url string) bool {
	return ecrRepository.MatchString(strings.ToLower(url))
}

// executeAhead runs one of the ServerAheadOperations; otherwise it is
// execute (same retries, maintenance handling and redaction). It is kept
// apart from execute so that the operations execute knows are exactly the
// validated Operations().
func (c *Client) executeAhead(ctx context.Context, deployment, operation string, out any) error {
	query, ok := aheadOperations[operation]
	if !ok {
		return fmt.Errorf("unknown operation %q", operation)
	}
	if c.token == "" {
		return errors.New("no Dagster+ API token configured: set the `dagster_cloud_api_token` input " +
			"(DAGSTER_CLOUD_API_TOKEN) to an agent token or user token for the organization")
	}
	body, err := json.Marshal(map[string]any{"query": query, "variables": map[string]any{}})
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
