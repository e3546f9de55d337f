package dagsteremu

import (
	"encoding/base64"

	"github.com/vektah/gqlparser/v2/ast"
)

// DefaultServerlessRegion is the awsRegion the emulator reports when
// ServerlessRegistry.Region is empty.
const DefaultServerlessRegion = "us-west-2"

// ecrUsername is the user name of an ECR authorization token: ECR's
// GetAuthorizationToken returns base64("AWS:<password>"), and Dagster+ hands
// that token out as Serverless.awsAuthToken.
const ecrUsername = "AWS"

// ServerlessRegistry makes the emulated organization a Dagster+ Serverless
// one (WithServerless): the registry it hands out in `serverless { … }` for
// the images of code locations.
type ServerlessRegistry struct {
	// URL is registryUrl: for ECR an image repository without a tag
	// (images go to URL:tag); for Harbor (IsHarbor) a repository prefix
	// (images go to URL/<location>:tag). Tests pass the address of a local
	// registry and a path, e.g. "127.0.0.1:5000/dagster-serverless".
	URL string
	// Username and Password are encoded into awsAuthToken as
	// base64("<Username>:<Password>"), the form of an ECR authorization
	// token, which the dagster-cloud CLI decodes and splits at ":" for
	// `docker login`. Username "" means "AWS", ECR's user; a test that
	// points the emulator at a local registry sets the user of the
	// registry's htpasswd file instead, since clients take the user from
	// the token rather than assuming "AWS".
	Username string
	Password string
	// Region is awsRegion; "" means DefaultServerlessRegion.
	Region string
	// AllowCustomBase is registryAllowCustomBase.
	AllowCustomBase bool
	// IsHarbor is registryIsHarbor, a field the reference schema lacks
	// (schema_ext.graphql); with WithReferenceSchemaOnly the emulator does
	// not serve it.
	IsHarbor bool
}

// AuthToken returns the awsAuthToken the emulator hands out:
// base64("<user>:<password>").
func (r ServerlessRegistry) AuthToken() string {
	user := r.Username
	if user == "" {
		user = ecrUsername
	}
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + r.Password))
}

// WithServerless makes the organization a Dagster+ Serverless one: every
// deployment reports agentType SERVERLESS, and `serverless { … }` answers
// with the given registry, status ACTIVE and its credentials. Without it the
// organization is Hybrid: agentType HYBRID, and `serverless` answers status
// INACTIVE with no registry URL and no credentials (what the emulator
// assumes a Hybrid organization gets; the real server's answer is not
// documented).
func WithServerless(r ServerlessRegistry) Option {
	return func(s *Server) {
		reg := r
		s.serverless = &reg
	}
}

// WithServerlessPending makes the next n answers of a Serverless
// organization to a query for the registry (a selection of registryUrl or
// awsAuthToken) carry neither, with status PROVISIONING: the "registry
// information not available yet" answers of a deployment that is still
// activating. See SetServerlessPending.
func WithServerlessPending(n int) Option {
	return func(s *Server) {
		if n > 0 {
			s.serverlessPending = n
		}
	}
}

// WithReferenceSchemaOnly makes the emulator serve only SchemaSDL(), without
// the fields the server has that the reference schema lacks
// (SchemaExtensionSDL(), e.g. Serverless.registryIsHarbor): a query that
// selects one fails validation with a top-level "errors" array, as it would
// on a server without the field.
func WithReferenceSchemaOnly() Option {
	return func(s *Server) { s.referenceSchemaOnly = true }
}

// SetServerlessPending sets how many more registry answers say "not
// available yet" (see WithServerlessPending). It applies to Serverless
// organizations only.
func (s *Server) SetServerlessPending(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverlessPending = max(n, 0)
}

// ServerlessPending returns how many "not available yet" registry answers
// are left.
func (s *Server) ServerlessPending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serverlessPending
}

// SetServerlessStatus scripts the status of a Serverless organization's
// agent (a ServerlessAgentStatus value such as PROVISION_ERROR or
// INACTIVE) and, if message is set, the PythonError of Serverless.error.
// While a status other than ACTIVE is set, answers carry no registry URL and
// no credentials. "" restores the default (ACTIVE, with the registry).
func (s *Server) SetServerlessStatus(status, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serverlessStatus = status
	s.serverlessStatusMessage = message
}

// gqlSchema is the schema the emulator validates and executes against.
func (s *Server) gqlSchema() *ast.Schema {
	if s.referenceSchemaOnly {
		return schema
	}
	return extendedSchema
}

// serverlessValue resolves CloudQuery.serverless. It runs with s.mu held.
//
// A pending "not available yet" answer is consumed only when registryUrl or
// awsAuthToken is selected (once per answer, whichever is resolved first), so
// a query for the status alone does not use one up.
func (rc *requestContext) serverlessValue() (any, error) {
	s := rc.s
	if rc.deployment != "" {
		if _, err := rc.current(); err != nil {
			return nil, err
		}
	}
	v := map[string]any{
		"__typename":              "Serverless",
		"status":                  "INACTIVE",
		"error":                   nil,
		"registryUrl":             nil,
		"registryAllowCustomBase": nil,
		"awsAuthToken":            nil,
		"awsRegion":               DefaultServerlessRegion,
		"registryIsHarbor":        false,
	}
	if s.serverless == nil {
		return v, nil
	}
	r := *s.serverless
	if r.Region != "" {
		v["awsRegion"] = r.Region
	}
	v["registryAllowCustomBase"] = r.AllowCustomBase
	v["registryIsHarbor"] = r.IsHarbor

	status, message := "ACTIVE", ""
	if s.serverlessStatus != "" {
		status, message = s.serverlessStatus, s.serverlessStatusMessage
	}
	if message != "" {
		v["error"] = pythonErrorValue(message, nil, nil)
	}
	if status != "ACTIVE" {
		v["status"] = status
		return v, nil
	}
	// ACTIVE: the registry is handed out unless a pending answer is due.
	decided, available := false, true
	decide := func() bool {
		if !decided {
			decided = true
			if s.serverlessPending > 0 {
				s.serverlessPending--
				available = false
			}
		}
		return available
	}
	v["status"] = resolver(func(map[string]any) (any, error) {
		if (decided && !available) || (!decided && s.serverlessPending > 0) {
			return "PROVISIONING", nil
		}
		return "ACTIVE", nil
	})
	v["registryUrl"] = resolver(func(map[string]any) (any, error) {
		if !decide() {
			return nil, nil
		}
		return r.URL, nil
	})
	v["awsAuthToken"] = resolver(func(map[string]any) (any, error) {
		if !decide() {
			return nil, nil
		}
		return r.AuthToken(), nil
	})
	return v, nil
}

// agentType is the DeploymentAgentType every deployment reports.
func (s *Server) agentType() string {
	if s.serverless != nil {
		return "SERVERLESS"
	}
	return "HYBRID"
}
