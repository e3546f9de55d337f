// Package dagsteremu is a stateful emulator of the Dagster+ GraphQL API for
// tests and local demos. It parses and validates every request against a
// subset of the real Dagster+ schema, executes the selection set over an
// in-memory model of deployments, branch deployments, code locations and
// agents, and can inject faults (HTTP errors, Retry-After, maintenance
// bodies, slow responses).
package dagsteremu

import (
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

//go:embed schema.graphql
var schemaSDL string

//go:embed schema_ext.graphql
var schemaExtSDL string

// schema is the parsed subset schema. Parsing it is checked by the tests.
var schema = gqlparser.MustLoadSchema(&ast.Source{Name: "dagsteremu/schema.graphql", Input: schemaSDL})

// extendedSchema is the subset schema plus the fields the Dagster+ server has
// that the reference schema lacks (schema_ext.graphql). The emulator serves it
// unless WithReferenceSchemaOnly is used.
var extendedSchema = gqlparser.MustLoadSchema(
	&ast.Source{Name: "dagsteremu/schema.graphql", Input: schemaSDL},
	&ast.Source{Name: "dagsteremu/schema_ext.graphql", Input: schemaExtSDL},
)

// SchemaSDL returns the emulator's schema: a hand-written subset of the
// Dagster+ GraphQL schema, in SDL. Every field in it exists in the reference
// schema.
func SchemaSDL() string { return schemaSDL }

// SchemaExtensionSDL returns the fields the Dagster+ server has that the
// reference schema lacks, as SDL type extensions of SchemaSDL's types (see
// schema_ext.graphql). By default the emulator serves both.
func SchemaExtensionSDL() string { return schemaExtSDL }

const (
	// DefaultToken is the API token accepted when WithTokens is not used.
	DefaultToken = "emulator-token"
	// DefaultOrganization is the organization name when WithOrganization is
	// not used.
	DefaultOrganization = "emulator"
	// ProductionDeployment is the full deployment that exists at start.
	ProductionDeployment = "prod"

	tokenHeader      = "Dagster-Cloud-Api-Token"
	deploymentHeader = "Dagster-Cloud-Deployment"
	maxRequestBytes  = 8 << 20
)

// Server is the emulator. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	tokens                 map[string]bool
	organization           string
	loadPolls              int
	unauthorizedAsTypename bool
	deploymentLimit        int
	referenceSchemaOnly    bool
	serverless             *ServerlessRegistry // nil: a Hybrid organization

	mu           sync.Mutex
	deployments  []*deploymentState // in creation order
	nextID       int
	agentRunning bool
	failures     map[string]string // location name -> scripted load error
	// Serverless registry answers still to come without a registry (see
	// SetServerlessPending), and the scripted agent status (see
	// SetServerlessStatus).
	serverlessPending       int
	serverlessStatus        string
	serverlessStatusMessage string
	faults                  []*Fault
	requests                []Request
}

// Option configures a Server.
type Option func(*Server)

// WithTokens sets the accepted API tokens (default: DefaultToken).
func WithTokens(tokens ...string) Option {
	return func(s *Server) {
		s.tokens = map[string]bool{}
		for _, t := range tokens {
			if t != "" {
				s.tokens[t] = true
			}
		}
	}
}

// WithOrganization sets the organization name. It is part of the hash that
// names branch deployments and may appear as the first path segment of
// legacy URLs (/<org>/graphql, /<org>/<deployment>/graphql).
func WithOrganization(name string) Option {
	return func(s *Server) {
		if name != "" {
			s.organization = name
		}
	}
}

// WithLoadPolls sets how many workspace polls (CliLocationsQuery) report a
// newly deployed location as LOADING before it becomes LOADED (default 2).
// Zero makes locations load on the first poll.
func WithLoadPolls(n int) Option {
	return func(s *Server) {
		if n >= 0 {
			s.loadPolls = n
		}
	}
}

// WithUnauthorizedAsTypename makes requests with a missing or unknown token
// return UnauthorizedError results (HTTP 200) instead of HTTP 401.
func WithUnauthorizedAsTypename() Option {
	return func(s *Server) { s.unauthorizedAsTypename = true }
}

// WithDeploymentLimit caps the number of branch deployments; creating one
// more returns DeploymentLimitError. Zero (the default) means no limit.
func WithDeploymentLimit(n int) Option {
	return func(s *Server) { s.deploymentLimit = n }
}

// New returns an emulator holding the full deployment "prod" (deploymentId
// 1), with a RUNNING agent and no code locations.
func New(opts ...Option) *Server {
	s := &Server{
		tokens:       map[string]bool{DefaultToken: true},
		organization: DefaultOrganization,
		loadPolls:    2,
		agentRunning: true,
		failures:     map[string]string{},
		nextID:       2,
	}
	for _, o := range opts {
		o(s)
	}
	s.deployments = []*deploymentState{{Deployment: Deployment{
		Name: ProductionDeployment, ID: 1, Type: "PRODUCTION",
	}}}
	return s
}

// Fault is a scripted failure, consumed by the next matching request(s).
type Fault struct {
	Status      int           // HTTP status; 0 means 200 when Body is set
	RetryAfter  string        // Retry-After header value, if any
	Body        string        // response body; empty means the status text
	ContentType string        // default: application/json for JSON-looking bodies, else text/plain
	Delay       time.Duration // wait before responding; a fault with only a Delay then serves the request normally
	Times       int           // how many requests it applies to; 0 means 1
	Operation   string        // if set, only requests for this operation name match
}

// InjectFault queues a fault. Faults are matched in the order queued.
func (s *Server) InjectFault(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// PendingFaults returns how many fault applications are still queued.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.Times
	}
	return n
}

// SetAgentRunning sets the status the agents query reports (RUNNING or
// NOT_RUNNING). While no agent runs, code locations stay LOADING.
func (s *Server) SetAgentRunning(running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agentRunning = running
}

// FailLocation scripts every later load of the named code location (in any
// deployment) to finish with a PythonError carrying message. An empty message
// removes the script.
func (s *Server) FailLocation(name, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if message == "" {
		delete(s.failures, name)
		return
	}
	s.failures[name] = message
}

// BranchDeploymentName returns the name the emulator gives the branch
// deployment of (repoName, branchName): the first 12 hex characters of
// sha1("<org>/<repo>/<branch>").
func (s *Server) BranchDeploymentName(repoName, branchName string) string {
	sum := sha1.Sum([]byte(s.organization + "/" + repoName + "/" + branchName))
	return hex.EncodeToString(sum[:])[:12]
}

// Request is one logged request.
type Request struct {
	Operation  string // operation name ("" if the body did not parse)
	Deployment string // resolved deployment ("" for organization scope)
	Path       string
	Headers    http.Header
	Query      string
	Variables  map[string]any
}

type requestBody struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

// ServeHTTP serves POST /graphql (organization scope), POST
// /<deployment>/graphql and the legacy /<org>/graphql and
// /<org>/<deployment>/graphql. The Dagster-Cloud-Deployment header takes
// precedence over the path. GET /_emulator/state returns JSON().
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/_emulator/state" {
		b, err := s.JSON()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return
	}
	pathDeployment, ok := s.route(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Path: r.URL.Path, Headers: r.Header.Clone()})
		s.mu.Unlock()
		if !ok {
			http.Error(w, "404 page not found: the Dagster+ emulator serves POST /graphql and /<deployment>/graphql", http.StatusNotFound)
			return
		}
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "405 method not allowed: use POST", http.StatusMethodNotAllowed)
		return
	}
	deployment := pathDeployment
	if h := strings.TrimSpace(r.Header.Get(deploymentHeader)); h != "" {
		deployment = h
	}

	raw, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes))
	if err != nil {
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return
	}
	var body requestBody
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	bodyErr := dec.Decode(&body)
	opName := body.OperationName
	if opName == "" && bodyErr == nil {
		if doc, err := parser.ParseQuery(&ast.Source{Input: body.Query}); err == nil && len(doc.Operations) == 1 {
			opName = doc.Operations[0].Name
		}
	}

	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Operation: opName, Deployment: deployment, Path: r.URL.Path,
		Headers: r.Header.Clone(), Query: body.Query, Variables: deepCopyMap(body.Variables),
	})
	fault := s.takeFault(opName)
	s.mu.Unlock()

	if fault != nil {
		if fault.Delay > 0 {
			t := time.NewTimer(fault.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		if fault.Status != 0 || fault.Body != "" || fault.RetryAfter != "" {
			writeFault(w, fault)
			return
		}
	}

	token := r.Header.Get(tokenHeader)
	authorized := token != "" && s.tokens[token]
	if !authorized && !s.unauthorizedAsTypename {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "Unauthorized: missing or invalid Dagster-Cloud-Api-Token\n")
		return
	}

	if bodyErr != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"errors": gqlerror.List{gqlerror.Errorf("request body is not a GraphQL JSON request: %v", bodyErr)},
			"data":   nil,
		})
		return
	}
	if strings.TrimSpace(body.Query) == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"errors": gqlerror.List{gqlerror.Errorf("request body has no query")},
			"data":   nil,
		})
		return
	}
	writeJSON(w, http.StatusOK, s.handleGraphQL(body, deployment, !authorized))
}

// route maps a URL path to the deployment it names ("" for organization
// scope). ok is false for paths the emulator does not serve.
func (s *Server) route(path string) (deployment string, ok bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 0 || parts[len(parts)-1] != "graphql" {
		return "", false
	}
	parts = parts[:len(parts)-1]
	switch len(parts) {
	case 0:
		return "", true
	case 1:
		if parts[0] == s.organization {
			return "", true
		}
		return parts[0], parts[0] != ""
	case 2:
		if parts[0] != s.organization || parts[1] == "" {
			return "", false
		}
		return parts[1], true
	}
	return "", false
}

// takeFault pops the first queued fault matching the operation. s.mu must
// be held.
func (s *Server) takeFault(op string) *Fault {
	for i, f := range s.faults {
		if f.Operation != "" && f.Operation != op {
			continue
		}
		applied := *f
		f.Times--
		if f.Times <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		return &applied
	}
	return nil
}

func writeFault(w http.ResponseWriter, f *Fault) {
	status := f.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := f.Body
	if body == "" {
		body = fmt.Sprintf("%d %s\n", status, http.StatusText(status))
	}
	ct := f.ContentType
	if ct == "" {
		if t := strings.TrimSpace(body); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") {
			ct = "application/json"
		} else {
			ct = "text/plain; charset=utf-8"
		}
	}
	w.Header().Set("Content-Type", ct)
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// handleGraphQL validates and executes one request and returns the response
// object.
func (s *Server) handleGraphQL(body requestBody, deployment string, unauthorized bool) map[string]any {
	fail := func(errs gqlerror.List) map[string]any {
		return map[string]any{"errors": errs, "data": nil}
	}
	schema := s.gqlSchema()
	doc, errs := gqlparser.LoadQueryWithRules(schema, body.Query, nil)
	if len(errs) > 0 {
		return fail(errs)
	}
	var op *ast.OperationDefinition
	switch {
	case body.OperationName != "":
		op = doc.Operations.ForName(body.OperationName)
		if op == nil {
			return fail(gqlerror.List{gqlerror.Errorf("Unknown operation named %q.", body.OperationName)})
		}
	case len(doc.Operations) == 1:
		op = doc.Operations[0]
	default:
		return fail(gqlerror.List{gqlerror.Errorf("Must provide operation name if query contains multiple operations.")})
	}
	vars := body.Variables
	if vars == nil {
		vars = map[string]any{}
	}
	coerced, err := validator.VariableValues(schema, op, vars)
	if err != nil {
		return fail(gqlerror.List{variableError(err)})
	}
	if err := checkStrictEnums(schema, op, coerced); err != nil {
		return fail(gqlerror.List{gqlerror.Errorf("%s", err.Error())})
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rc := &requestContext{s: s, deployment: deployment}
	var root map[string]any
	if op.Operation == ast.Mutation {
		root = rc.mutationRoot()
	} else {
		root = rc.queryRoot()
	}
	if unauthorized {
		for k := range root {
			if k != "__typename" {
				root[k] = resolver(func(map[string]any) (any, error) {
					return nil, &typedError{typename: "UnauthorizedError",
						message: "Unauthorized: missing or invalid Dagster-Cloud-Api-Token"}
				})
			}
		}
	}
	ex := &executor{schema: schema, doc: doc, vars: coerced}
	data, execErrs := ex.execute(op, root)
	resp := map[string]any{"data": data}
	if len(execErrs) > 0 {
		resp["errors"] = execErrs
	}
	return resp
}

// deepCopy copies JSON-like values.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return deepCopyMap(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopy(v)
	}
	return out
}

// variableError rewords a gqlparser variable coercion error so that its
// message names the variable and the offending input path, like graphql-core
// does.
func variableError(err error) *gqlerror.Error {
	var ge *gqlerror.Error
	if !errors.As(err, &ge) {
		return gqlerror.Wrap(err)
	}
	var parts []string
	for i, p := range ge.Path {
		if i == 0 && p == ast.PathName("variable") {
			continue
		}
		switch x := p.(type) {
		case ast.PathName:
			parts = append(parts, string(x))
		case ast.PathIndex:
			if len(parts) > 0 {
				parts[len(parts)-1] += fmt.Sprintf("[%d]", int(x))
			}
		}
	}
	if len(parts) == 0 {
		return ge
	}
	if len(parts) == 1 {
		return &gqlerror.Error{Message: fmt.Sprintf("Variable '$%s' %s", parts[0], ge.Message), Path: ge.Path}
	}
	return &gqlerror.Error{
		Message: fmt.Sprintf("Variable '$%s' got invalid value at %q; %s", parts[0], strings.Join(parts, "."), ge.Message),
		Path:    ge.Path,
	}
}
