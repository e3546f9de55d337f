package dagsteremu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// This file holds a small, generic GraphQL executor. Resolved values are
// plain Go values: objects are map[string]any carrying a "__typename" key,
// lists are slices, leaves are strings, numbers, booleans or nil. A map entry
// may also be a resolver (func(args map[string]any) (any, error)) that is
// called with the field's argument values when the field is selected. The
// executor walks the operation's selection set (fields, aliases, inline
// fragments and fragment spreads with type conditions, @skip/@include and
// __typename) so the response holds exactly the selected fields.

// resolver computes a field's value when the field is selected.
type resolver func(args map[string]any) (any, error)

// typedError is a resolver failure that Dagster+ reports as a member of the
// field's result union (e.g. UnauthorizedError, DeploymentNotFoundError)
// when the union has that member, as a PythonError when it has that, and as
// a top-level GraphQL error otherwise.
type typedError struct {
	typename string
	message  string
	fields   map[string]any // extra fields of the result object
}

func (e *typedError) Error() string { return e.message }

func (e *typedError) value() map[string]any {
	v := map[string]any{"__typename": e.typename, "message": e.message}
	for k, f := range e.fields {
		v[k] = f
	}
	return v
}

// orderedObject is a JSON object that keeps the order of its keys, so that
// responses list fields in selection order like a real GraphQL server.
type orderedObject struct {
	keys   []string
	values map[string]any
}

func (o *orderedObject) set(k string, v any) {
	if _, ok := o.values[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.values[k] = v
}

func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.values[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

type executor struct {
	schema *ast.Schema
	doc    *ast.QueryDocument
	vars   map[string]any
	errs   gqlerror.List
}

// execute runs op against root, the value of the operation's root type.
func (e *executor) execute(op *ast.OperationDefinition, root map[string]any) (any, gqlerror.List) {
	var rootType *ast.Definition
	switch op.Operation {
	case ast.Query, "":
		rootType = e.schema.Query
	case ast.Mutation:
		rootType = e.schema.Mutation
	}
	if rootType == nil {
		return nil, gqlerror.List{gqlerror.Errorf("the emulator does not support %s operations", op.Operation)}
	}
	data := e.selectionSet(rootType, root, op.SelectionSet, nil)
	return data, e.errs
}

func (e *executor) addError(path ast.Path, pos *ast.Position, format string, args ...any) {
	err := gqlerror.ErrorPathf(append(ast.Path(nil), path...), format, args...)
	if pos != nil {
		err.Locations = []gqlerror.Location{{Line: pos.Line, Column: pos.Column}}
	}
	e.errs = append(e.errs, err)
}

type fieldGroup struct {
	key    string
	fields []*ast.Field
}

// collectFields implements CollectFields of the GraphQL specification for
// an object type.
func (e *executor) collectFields(obj *ast.Definition, set ast.SelectionSet, groups *[]*fieldGroup, visited map[string]bool) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !e.included(s.Directives) {
				continue
			}
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			found := false
			for _, g := range *groups {
				if g.key == key {
					g.fields = append(g.fields, s)
					found = true
					break
				}
			}
			if !found {
				*groups = append(*groups, &fieldGroup{key: key, fields: []*ast.Field{s}})
			}
		case *ast.InlineFragment:
			if !e.included(s.Directives) || (s.TypeCondition != "" && !e.typeApplies(obj, s.TypeCondition)) {
				continue
			}
			e.collectFields(obj, s.SelectionSet, groups, visited)
		case *ast.FragmentSpread:
			if !e.included(s.Directives) || visited[s.Name] {
				continue
			}
			visited[s.Name] = true
			frag := e.doc.Fragments.ForName(s.Name)
			if frag == nil || !e.typeApplies(obj, frag.TypeCondition) {
				continue
			}
			e.collectFields(obj, frag.SelectionSet, groups, visited)
		}
	}
}

// typeApplies reports whether a fragment with the given type condition
// applies to the object type.
func (e *executor) typeApplies(obj *ast.Definition, condition string) bool {
	if condition == obj.Name {
		return true
	}
	cond := e.schema.Types[condition]
	if cond == nil || !cond.IsAbstractType() {
		return false
	}
	for _, t := range e.schema.GetPossibleTypes(cond) {
		if t.Name == obj.Name {
			return true
		}
	}
	return false
}

// included evaluates @skip and @include.
func (e *executor) included(dirs ast.DirectiveList) bool {
	for _, d := range dirs {
		if d.Name != "skip" && d.Name != "include" {
			continue
		}
		arg := d.Arguments.ForName("if")
		if arg == nil {
			continue
		}
		v, err := arg.Value.Value(e.vars)
		b, ok := v.(bool)
		if err != nil || !ok {
			continue
		}
		if (d.Name == "skip" && b) || (d.Name == "include" && !b) {
			return false
		}
	}
	return true
}

func (e *executor) selectionSet(objType *ast.Definition, obj map[string]any, set ast.SelectionSet, path ast.Path) *orderedObject {
	var groups []*fieldGroup
	e.collectFields(objType, set, &groups, map[string]bool{})
	out := &orderedObject{values: make(map[string]any, len(groups))}
	for _, g := range groups {
		out.set(g.key, e.field(objType, obj, g, append(path, ast.PathName(g.key))))
	}
	return out
}

func (e *executor) field(objType *ast.Definition, obj map[string]any, g *fieldGroup, path ast.Path) any {
	f := g.fields[0]
	if f.Name == "__typename" {
		return objType.Name
	}
	def := objType.Fields.ForName(f.Name)
	if def == nil {
		// Introspection fields pass validation but are not implemented.
		e.addError(path, f.Position, "field %q is not supported by the Dagster+ emulator", f.Name)
		return nil
	}
	value := obj[f.Name]
	if r, ok := value.(resolver); ok {
		v, err := r(e.argumentValues(def, f))
		if err != nil {
			v, err = e.errorResult(def.Type, err)
			if err != nil {
				e.addError(path, f.Position, "%s", err.Error())
				return nil
			}
		}
		value = v
	}
	var sub ast.SelectionSet
	for _, gf := range g.fields {
		sub = append(sub, gf.SelectionSet...)
	}
	return e.complete(def.Type, value, sub, path, f.Position)
}

// errorResult turns a resolver error into a result value when the field's
// type is a union or interface that can hold it.
func (e *executor) errorResult(t *ast.Type, err error) (any, error) {
	if t.Elem != nil {
		return nil, err
	}
	def := e.schema.Types[t.NamedType]
	if def == nil || !def.IsAbstractType() {
		return nil, err
	}
	possible := map[string]bool{}
	for _, p := range e.schema.GetPossibleTypes(def) {
		possible[p.Name] = true
	}
	var te *typedError
	if errors.As(err, &te) && possible[te.typename] {
		return te.value(), nil
	}
	if possible["PythonError"] {
		return pythonErrorValue(err.Error(), nil, nil), nil
	}
	return nil, err
}

func (e *executor) argumentValues(def *ast.FieldDefinition, f *ast.Field) map[string]any {
	args := make(map[string]any, len(def.Arguments))
	for _, ad := range def.Arguments {
		if a := f.Arguments.ForName(ad.Name); a != nil {
			if a.Value.Kind == ast.Variable {
				if v, ok := e.vars[a.Value.Raw]; ok {
					args[ad.Name] = v
					continue
				}
			} else if v, err := a.Value.Value(e.vars); err == nil {
				args[ad.Name] = v
				continue
			}
		}
		if ad.DefaultValue != nil {
			if v, err := ad.DefaultValue.Value(nil); err == nil {
				args[ad.Name] = v
			}
		}
	}
	return args
}

// complete implements CompleteValue for a resolved value of type t.
func (e *executor) complete(t *ast.Type, value any, sel ast.SelectionSet, path ast.Path, pos *ast.Position) any {
	if isNil(value) {
		if t.NonNull {
			e.addError(path, pos, "Cannot return null for non-nullable field %s", strings.TrimSuffix(path.String(), "."))
		}
		return nil
	}
	if t.Elem != nil {
		rv := reflect.ValueOf(value)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			e.addError(path, pos, "emulator bug: expected a list, got %T", value)
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = e.complete(t.Elem, rv.Index(i).Interface(), sel, append(path, ast.PathIndex(i)), pos)
		}
		return out
	}
	def := e.schema.Types[t.NamedType]
	if def == nil {
		e.addError(path, pos, "emulator bug: unknown type %s", t.NamedType)
		return nil
	}
	switch def.Kind {
	case ast.Scalar, ast.Enum:
		return value
	}
	obj, ok := value.(map[string]any)
	if !ok {
		e.addError(path, pos, "emulator bug: expected an object for %s, got %T", def.Name, value)
		return nil
	}
	objType := def
	if def.IsAbstractType() {
		name, _ := obj["__typename"].(string)
		objType = e.schema.Types[name]
		if objType == nil || !e.typeApplies(objType, def.Name) {
			e.addError(path, pos, "emulator bug: %q is not a possible type of %s", name, def.Name)
			return nil
		}
	}
	return e.selectionSet(objType, obj, sel, path)
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Func:
		return rv.IsNil()
	}
	return false
}

// pythonErrorValue builds a PythonError object.
func pythonErrorValue(message string, stack []string, chain []any) map[string]any {
	st := make([]any, len(stack))
	for i, s := range stack {
		st[i] = s
	}
	if chain == nil {
		chain = []any{}
	}
	return map[string]any{
		"__typename": "PythonError",
		"message":    message,
		"className":  nil,
		"stack":      st,
		"cause":      nil,
		"causes":     []any{},
		"errorChain": chain,
	}
}

// checkStrictEnums rejects enum variable values that differ from every enum
// value by more than case. gqlparser's VariableValues compares enum values
// case-insensitively, but a real GraphQL server (graphene) does not: a
// lower-case "open" for PullRequestStatus is an error there.
func checkStrictEnums(schema *ast.Schema, op *ast.OperationDefinition, vars map[string]any) error {
	for _, vd := range op.VariableDefinitions {
		v, ok := vars[vd.Variable]
		if !ok {
			continue
		}
		if err := strictEnum(schema, vd.Type, v, vd.Variable, nil); err != nil {
			return err
		}
	}
	return nil
}

func strictEnum(schema *ast.Schema, t *ast.Type, v any, variable string, path []string) error {
	if v == nil {
		return nil
	}
	if t.Elem != nil {
		if list, ok := v.([]any); ok {
			for i, item := range list {
				if err := strictEnum(schema, t.Elem, item, variable, append(path, fmt.Sprintf("[%d]", i))); err != nil {
					return err
				}
			}
			return nil
		}
		return strictEnum(schema, t.Elem, v, variable, path)
	}
	def := schema.Types[t.NamedType]
	if def == nil {
		return nil
	}
	switch def.Kind {
	case ast.Enum:
		s, _ := v.(string)
		if def.EnumValues.ForName(s) != nil {
			return nil
		}
		at := ""
		if len(path) > 0 {
			at = fmt.Sprintf(" at %q", variable+"."+strings.ReplaceAll(strings.Join(path, "."), ".[", "["))
		}
		msg := fmt.Sprintf("Variable '$%s' got invalid value %s%s; Value %s does not exist in '%s' enum.",
			variable, jsonString(v), at, jsonString(v), def.Name)
		for _, ev := range def.EnumValues {
			if strings.EqualFold(ev.Name, s) {
				msg += fmt.Sprintf(" Did you mean the enum value '%s'?", ev.Name)
			}
		}
		return errors.New(msg)
	case ast.InputObject:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for _, fd := range def.Fields {
			if fv, ok := m[fd.Name]; ok {
				if err := strictEnum(schema, fd.Type, fv, variable, append(path, fd.Name)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
