package dagsteremu_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

const (
	agentTypeQuery = `query DeploymentInfoQuery {
	currentDeployment {
        agentType
    }
}`
	ecrQuery = `query CliGetEcrInfo {
    serverless { awsRegion awsAuthToken registryAllowCustomBase registryUrl }
}`
	ecrHarborQuery = `query CliGetEcrInfo {
    serverless { awsRegion awsAuthToken registryAllowCustomBase registryIsHarbor registryUrl }
}`
	statusQuery = `query { serverless { status error { message } } }`
)

func serverlessData(t *testing.T, resp gqlResponse) map[string]any {
	t.Helper()
	v, ok := resp.Data["serverless"].(map[string]any)
	if !ok {
		t.Fatalf("serverless = %#v", resp.Data["serverless"])
	}
	return v
}

func TestAgentType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []dagsteremu.Option
		want string
	}{
		{"hybrid by default", nil, "HYBRID"},
		{"serverless", []dagsteremu.Option{dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: "r/x"})}, "SERVERLESS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := dagsteremu.New(tc.opts...)
			code, raw, resp := do(t, srv, call{deployment: "prod", query: agentTypeQuery})
			mustOK(t, code, raw, resp)
			if got := resp.Data["currentDeployment"].(map[string]any)["agentType"]; got != tc.want {
				t.Errorf("agentType = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestServerlessRegistryAnswers(t *testing.T) {
	t.Parallel()
	reg := dagsteremu.ServerlessRegistry{
		URL: "127.0.0.1:5000/dagster-serverless", Username: "testuser", Password: "s3cr:et",
		Region: "eu-west-1", AllowCustomBase: true, IsHarbor: true,
	}
	srv := dagsteremu.New(dagsteremu.WithServerless(reg))
	for _, scope := range []call{{}, {deployment: "prod"}, {path: "/prod/graphql"}} {
		scope.query = ecrHarborQuery
		code, raw, resp := do(t, srv, scope)
		mustOK(t, code, raw, resp)
		got := serverlessData(t, resp)
		want := map[string]any{
			"awsRegion": "eu-west-1", "registryAllowCustomBase": true, "registryIsHarbor": true,
			"registryUrl": reg.URL, "awsAuthToken": reg.AuthToken(),
		}
		if !equalJSON(t, got, want) {
			t.Errorf("%+v: serverless = %v, want %v", scope, got, want)
		}
	}
	tok, err := base64.StdEncoding.DecodeString(reg.AuthToken())
	if err != nil || string(tok) != "testuser:s3cr:et" {
		t.Errorf("AuthToken decodes to %q, %v", tok, err)
	}
	ecr := dagsteremu.ServerlessRegistry{Password: "pw"}
	if tok, _ := base64.StdEncoding.DecodeString(ecr.AuthToken()); string(tok) != "AWS:pw" {
		t.Errorf("default user: token decodes to %q, want AWS:pw", tok)
	}

	// An unknown deployment is an error, as for any deployment-scoped field.
	code, _, resp := do(t, srv, call{deployment: "nope", query: ecrQuery})
	if code != 200 || len(resp.Errors) == 0 || !strings.Contains(resp.Errors[0].Message, "not found") {
		t.Errorf("unknown deployment: %d %+v", code, resp)
	}
}

func TestServerlessHybridOrganization(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New()
	code, raw, resp := do(t, srv, call{query: `query { serverless { status registryUrl awsAuthToken registryAllowCustomBase registryIsHarbor awsRegion } }`})
	mustOK(t, code, raw, resp)
	want := map[string]any{
		"status": "INACTIVE", "registryUrl": nil, "awsAuthToken": nil, "registryAllowCustomBase": nil,
		"registryIsHarbor": false, "awsRegion": dagsteremu.DefaultServerlessRegion,
	}
	if got := serverlessData(t, resp); !equalJSON(t, got, want) {
		t.Errorf("serverless = %v, want %v", got, want)
	}
}

func TestServerlessPending(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: "r/x", Password: "pw"}),
		dagsteremu.WithServerlessPending(2))
	// A status-only query does not use up a pending answer.
	code, raw, resp := do(t, srv, call{query: statusQuery})
	mustOK(t, code, raw, resp)
	if got := serverlessData(t, resp)["status"]; got != "PROVISIONING" {
		t.Errorf("status = %v", got)
	}
	if n := srv.ServerlessPending(); n != 2 {
		t.Fatalf("pending = %d after a status query", n)
	}
	for i := range 3 {
		code, raw, resp := do(t, srv, call{query: `query { serverless { status registryUrl awsAuthToken } }`})
		mustOK(t, code, raw, resp)
		got := serverlessData(t, resp)
		if i < 2 {
			if got["registryUrl"] != nil || got["awsAuthToken"] != nil || got["status"] != "PROVISIONING" {
				t.Errorf("answer %d = %v, want no registry yet", i, got)
			}
			continue
		}
		if got["registryUrl"] != "r/x" || got["awsAuthToken"] == nil || got["status"] != "ACTIVE" {
			t.Errorf("answer %d = %v, want the registry", i, got)
		}
	}
	srv.SetServerlessPending(1)
	_, _, resp = do(t, srv, call{query: ecrQuery})
	if got := serverlessData(t, resp); got["registryUrl"] != nil {
		t.Errorf("after SetServerlessPending(1): %v", got)
	}

	srv.SetServerlessStatus("PROVISION_ERROR", "stack creation failed")
	_, _, resp = do(t, srv, call{query: `query { serverless { status registryUrl error { message } } }`})
	want := map[string]any{"status": "PROVISION_ERROR", "registryUrl": nil, "error": map[string]any{"message": "stack creation failed"}}
	if got := serverlessData(t, resp); !equalJSON(t, got, want) {
		t.Errorf("scripted status: %v, want %v", got, want)
	}
	srv.SetServerlessStatus("", "")
	_, _, resp = do(t, srv, call{query: ecrQuery})
	if got := serverlessData(t, resp); got["registryUrl"] != "r/x" {
		t.Errorf("after reset: %v", got)
	}
}

func TestReferenceSchemaOnly(t *testing.T) {
	t.Parallel()
	srv := dagsteremu.New(dagsteremu.WithServerless(dagsteremu.ServerlessRegistry{URL: "r/x"}), dagsteremu.WithReferenceSchemaOnly())
	code, _, resp := do(t, srv, call{query: ecrHarborQuery})
	if code != 200 || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, `Cannot query field "registryIsHarbor" on type "Serverless"`) {
		t.Errorf("got %d %+v, want a validation error naming registryIsHarbor", code, resp)
	}
	code, raw, resp := do(t, srv, call{query: ecrQuery})
	mustOK(t, code, raw, resp)
}

// TestSchemaExtensionLagsRealSchema checks schema_ext.graphql: it extends
// types of the subset schema that exist in the real schema, with fields the
// real schema does not have yet. Once the reference schema has one of them,
// this fails: move the field into schema.graphql.
func TestSchemaExtensionLagsRealSchema(t *testing.T) {
	t.Parallel()
	real := testbed.RealSchema(t)
	ext, err := gqlparser.LoadSchema(
		&ast.Source{Name: "schema.graphql", Input: dagsteremu.SchemaSDL()},
		&ast.Source{Name: "schema_ext.graphql", Input: dagsteremu.SchemaExtensionSDL()},
	)
	if err != nil {
		t.Fatal(err)
	}
	subset, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: dagsteremu.SchemaSDL()})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parser.ParseSchema(&ast.Source{Name: "schema_ext.graphql", Input: dagsteremu.SchemaExtensionSDL()})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Definitions) != 0 || len(doc.Extensions) == 0 {
		t.Fatalf("schema_ext.graphql must hold type extensions only")
	}
	n := 0
	for _, x := range doc.Extensions {
		if real.Types[x.Name] == nil || subset.Types[x.Name] == nil {
			t.Errorf("extension of %s: the type must exist in the real and the subset schema", x.Name)
			continue
		}
		for _, f := range x.Fields {
			n++
			if real.Types[x.Name].Fields.ForName(f.Name) != nil {
				t.Errorf("%s.%s is in the reference schema now: move it into schema.graphql", x.Name, f.Name)
			}
			if ext.Types[x.Name].Fields.ForName(f.Name) == nil {
				t.Errorf("%s.%s missing from the extended schema", x.Name, f.Name)
			}
		}
	}
	if n == 0 {
		t.Error("no extension fields")
	}
}
