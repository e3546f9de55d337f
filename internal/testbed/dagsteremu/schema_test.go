package dagsteremu_test

import (
	"slices"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed"
	"github.com/dagster-branch-deploy/dagster-branch-deploy/internal/testbed/dagsteremu"
)

func TestSubsetSchemaLoads(t *testing.T) {
	t.Parallel()
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: dagsteremu.SchemaSDL()})
	if err != nil {
		t.Fatal(err)
	}
	if s.Query == nil || s.Query.Name != "CloudQuery" || s.Mutation == nil || s.Mutation.Name != "CloudMutation" {
		t.Errorf("root types: query %v, mutation %v", s.Query, s.Mutation)
	}
}

// TestSubsetSchemaMatchesRealSchema checks that every type, field, argument,
// enum value, union member and interface of the emulator's subset schema
// exists in the real Dagster+ schema with the same type, so that the subset
// cannot drift from the real API.
func TestSubsetSchemaMatchesRealSchema(t *testing.T) {
	t.Parallel()
	real := testbed.RealSchema(t)
	subset, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphql", Input: dagsteremu.SchemaSDL()})
	if err != nil {
		t.Fatal(err)
	}
	if subset.Query.Name != real.Query.Name || subset.Mutation.Name != real.Mutation.Name {
		t.Errorf("root types %s/%s, real %s/%s", subset.Query.Name, subset.Mutation.Name, real.Query.Name, real.Mutation.Name)
	}
	checked := 0
	for name, def := range subset.Types {
		if def.BuiltIn {
			continue
		}
		rdef := real.Types[name]
		if rdef == nil {
			t.Errorf("type %s does not exist in the real schema", name)
			continue
		}
		if rdef.Kind != def.Kind {
			t.Errorf("type %s is %s, real schema has %s", name, def.Kind, rdef.Kind)
			continue
		}
		checked++
		for _, iface := range def.Interfaces {
			if !slices.Contains(rdef.Interfaces, iface) {
				t.Errorf("type %s implements %s, not in the real schema", name, iface)
			}
		}
		for _, member := range def.Types {
			if !slices.Contains(rdef.Types, member) {
				t.Errorf("union %s has member %s, not in the real schema", name, member)
			}
		}
		for _, member := range rdef.Types {
			if !slices.Contains(def.Types, member) {
				t.Errorf("union %s lacks the real member %s (fragments on it would not validate)", name, member)
			}
		}
		for _, ev := range def.EnumValues {
			if rdef.EnumValues.ForName(ev.Name) == nil {
				t.Errorf("enum %s has value %s, not in the real schema", name, ev.Name)
			}
		}
		for _, ev := range rdef.EnumValues {
			if def.EnumValues.ForName(ev.Name) == nil {
				t.Errorf("enum %s lacks the real value %s", name, ev.Name)
			}
		}
		for _, f := range def.Fields {
			if f.Name == "__typename" || f.Name == "__schema" || f.Name == "__type" {
				continue
			}
			rf := rdef.Fields.ForName(f.Name)
			if rf == nil {
				t.Errorf("field %s.%s does not exist in the real schema", name, f.Name)
				continue
			}
			if f.Type.String() != rf.Type.String() {
				t.Errorf("field %s.%s has type %s, real schema has %s", name, f.Name, f.Type, rf.Type)
			}
			for _, a := range f.Arguments {
				ra := rf.Arguments.ForName(a.Name)
				if ra == nil {
					t.Errorf("argument %s.%s(%s) does not exist in the real schema", name, f.Name, a.Name)
					continue
				}
				if a.Type.String() != ra.Type.String() {
					t.Errorf("argument %s.%s(%s) has type %s, real schema has %s", name, f.Name, a.Name, a.Type, ra.Type)
				}
			}
			for _, ra := range rf.Arguments {
				if ra.Type.NonNull && ra.DefaultValue == nil && f.Arguments.ForName(ra.Name) == nil {
					t.Errorf("field %s.%s lacks the required real argument %s", name, f.Name, ra.Name)
				}
			}
		}
		if def.Kind == ast.InputObject {
			for _, rf := range rdef.Fields {
				if def.Fields.ForName(rf.Name) == nil {
					t.Errorf("input %s lacks the real field %s", name, rf.Name)
				}
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d types checked", checked)
	}
}
