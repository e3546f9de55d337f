package githubemu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// graphql serves POST /api/graphql. It parses GraphQL's query syntax (one
// query operation, fields, aliases, arguments, variable definitions) but
// resolves only Query.viewer (login, databaseId, id, __typename) and
// Query.__typename; anything else is answered, as GitHub does, with 200 and
// {"errors": [...]}.
func (s *Server) graphql(w http.ResponseWriter, r *http.Request, who *identity) {
	if r.Method != http.MethodPost {
		apiError(w, http.StatusNotFound, "Not Found", docGraphQL)
		return
	}
	var in struct {
		Query any `json:"query"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON", docGraphQL)
		return
	}
	q, ok := in.Query.(string)
	if !ok || strings.TrimSpace(q) == "" {
		gqlErrors(w, []map[string]any{{"message": "A query attribute must be specified and must be a string."}})
		return
	}
	op, sel, perr := parseQuery(q)
	if perr != nil {
		gqlErrors(w, []map[string]any{perr})
		return
	}
	var errs []map[string]any
	data := map[string]any{}
	for _, f := range sel {
		path := []string{op, f.name}
		switch f.name {
		case "__typename":
			if e := scalar(f, path, "String!"); e != nil {
				errs = append(errs, e)
				continue
			}
			data[f.key()] = "Query"
		case "viewer":
			if len(f.args) > 0 {
				errs = append(errs, argNotAccepted(f, path))
				continue
			}
			if f.sel == nil {
				errs = append(errs, gqlError(f, path, "selectionMismatch", "Field must have selections (field 'viewer' returns User! but has no selections. Did you mean 'viewer { ... }'?)", nil))
				continue
			}
			viewer := map[string]any{}
			for _, g := range f.sel {
				gpath := append(append([]string(nil), path...), g.name)
				var v any
				switch g.name {
				case "login":
					v = who.login
				case "databaseId":
					v = who.id
				case "id":
					v = fmt.Sprintf("U_%d", who.id)
					if who.bot() {
						v = fmt.Sprintf("BOT_%d", who.id)
					}
				case "__typename":
					v = who.typ()
				default:
					errs = append(errs, gqlError(g, gpath, "undefinedField", fmt.Sprintf("Field '%s' doesn't exist on type 'User'", g.name), map[string]any{"typeName": "User", "fieldName": g.name}))
					continue
				}
				if len(g.args) > 0 {
					errs = append(errs, argNotAccepted(g, gpath))
					continue
				}
				if e := scalar(g, gpath, "String!"); e != nil {
					errs = append(errs, e)
					continue
				}
				viewer[g.key()] = v
			}
			data[f.key()] = viewer
		default:
			errs = append(errs, gqlError(f, path, "undefinedField", fmt.Sprintf("Field '%s' doesn't exist on type 'Query'", f.name), map[string]any{"typeName": "Query", "fieldName": f.name}))
		}
	}
	if len(errs) > 0 {
		gqlErrors(w, errs)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

func gqlErrors(w http.ResponseWriter, errs []map[string]any) {
	writeJSON(w, http.StatusOK, map[string]any{"errors": errs})
}

func gqlError(f *gqlField, path []string, code, msg string, ext map[string]any) map[string]any {
	if ext == nil {
		ext = map[string]any{}
	}
	ext["code"] = code
	return map[string]any{
		"path":       path,
		"extensions": ext,
		"locations":  []any{map[string]int{"line": f.line, "column": f.col}},
		"message":    msg,
	}
}

func scalar(f *gqlField, path []string, typ string) map[string]any {
	if f.sel == nil {
		return nil
	}
	return gqlError(f, path, "selectionMismatch", fmt.Sprintf("Selections can't be made on scalars (field '%s' returns %s but has selections [%s])", f.name, typ, f.sel[0].name), nil)
}

func argNotAccepted(f *gqlField, path []string) map[string]any {
	return gqlError(f, path, "argumentNotAccepted", fmt.Sprintf("Field '%s' doesn't accept argument '%s'", f.name, f.args[0]), map[string]any{"name": f.name, "typeName": "Field", "argumentName": f.args[0]})
}

// gqlField is a parsed field selection.
type gqlField struct {
	alias, name string
	args        []string
	sel         []*gqlField // nil for a leaf
	line, col   int
}

func (f *gqlField) key() string {
	if f.alias != "" {
		return f.alias
	}
	return f.name
}

type gqlToken struct {
	kind      string // NAME, PUNCT, STRING, NUMBER, EOF
	val       string
	line, col int
}

func lexGraphQL(src string) ([]gqlToken, map[string]any) {
	var toks []gqlToken
	line, col := 1, 1
	i := 0
	adv := func(n int) {
		for ; n > 0 && i < len(src); n-- {
			if src[i] == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			i++
		}
	}
	isName := func(c byte, first bool) bool {
		return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9')
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',':
			adv(1)
		case strings.HasPrefix(src[i:], "\ufeff"):
			i += len("\ufeff")
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				adv(1)
			}
		case strings.HasPrefix(src[i:], "..."):
			toks = append(toks, gqlToken{"PUNCT", "...", line, col})
			adv(3)
		case strings.ContainsRune("!$&()=:@[]{}|", rune(c)):
			toks = append(toks, gqlToken{"PUNCT", string(c), line, col})
			adv(1)
		case isName(c, true):
			j := i
			for j < len(src) && isName(src[j], false) {
				j++
			}
			toks = append(toks, gqlToken{"NAME", src[i:j], line, col})
			adv(j - i)
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(src) && strings.IndexByte("0123456789.eE+-", src[j]) >= 0 {
				j++
			}
			toks = append(toks, gqlToken{"NUMBER", src[i:j], line, col})
			adv(j - i)
		case strings.HasPrefix(src[i:], `"""`):
			end := strings.Index(src[i+3:], `"""`)
			if end < 0 {
				return nil, parseError(gqlToken{"STRING", src[i:], line, col})
			}
			toks = append(toks, gqlToken{"STRING", src[i : i+end+6], line, col})
			adv(end + 6)
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(src) || src[j] != '"' {
				return nil, parseError(gqlToken{"STRING", src[i:min(j, len(src))], line, col})
			}
			toks = append(toks, gqlToken{"STRING", src[i : j+1], line, col})
			adv(j + 1 - i)
		default:
			return nil, parseError(gqlToken{"UNKNOWN_CHAR", string(c), line, col})
		}
	}
	return append(toks, gqlToken{"EOF", "", line, col}), nil
}

var punctNames = map[string]string{
	"{": "LCURLY", "}": "RCURLY", "(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "]": "RBRACKET",
	":": "COLON", "!": "BANG", "$": "VAR_SIGN", "=": "EQUALS", "@": "DIR_SIGN", "...": "ELLIPSIS", "|": "PIPE", "&": "AMP",
}

// parseError is graphql-ruby's (GitHub's) parse error.
func parseError(t gqlToken) map[string]any {
	msg := "Unexpected end of document"
	if t.kind != "EOF" {
		kind := t.kind
		switch t.kind {
		case "NAME":
			kind = "IDENTIFIER"
		case "PUNCT":
			kind = punctNames[t.val]
		case "NUMBER":
			kind = "INT"
		}
		msg = fmt.Sprintf("Parse error on %s (%s) at [%d, %d]", strconv.Quote(t.val), kind, t.line, t.col)
	}
	return map[string]any{"message": msg, "locations": []any{map[string]int{"line": t.line, "column": t.col}}}
}

func unsupported(t gqlToken, what string) map[string]any {
	return map[string]any{
		"message":   "githubemu supports only a query selecting viewer { login databaseId id __typename }, not " + what,
		"locations": []any{map[string]int{"line": t.line, "column": t.col}},
	}
}

type gqlParser struct {
	toks []gqlToken
	pos  int
}

func (p *gqlParser) peek() gqlToken { return p.toks[p.pos] }

func (p *gqlParser) next() gqlToken {
	t := p.toks[p.pos]
	if t.kind != "EOF" {
		p.pos++
	}
	return t
}

func (p *gqlParser) is(val string) bool {
	t := p.peek()
	return t.kind == "PUNCT" && t.val == val
}

func (p *gqlParser) expect(val string) map[string]any {
	if !p.is(val) {
		return parseError(p.peek())
	}
	p.next()
	return nil
}

// parseQuery parses a document holding one query operation and returns its
// path name ("query" or "query Name") and top-level selections.
func parseQuery(src string) (string, []*gqlField, map[string]any) {
	toks, err := lexGraphQL(src)
	if err != nil {
		return "", nil, err
	}
	p := &gqlParser{toks: toks}
	op := "query"
	if t := p.peek(); t.kind == "NAME" {
		switch t.val {
		case "query":
			p.next()
			if n := p.peek(); n.kind == "NAME" {
				op += " " + p.next().val
			}
			if p.is("(") {
				if err := p.skipBalanced("(", ")"); err != nil {
					return "", nil, err
				}
			}
		case "mutation", "subscription", "fragment":
			return "", nil, unsupported(t, "a "+t.val)
		default:
			return "", nil, parseError(t)
		}
	}
	if p.is("@") {
		return "", nil, unsupported(p.peek(), "directives")
	}
	sel, err := p.selectionSet()
	if err != nil {
		return "", nil, err
	}
	if t := p.peek(); t.kind != "EOF" {
		if t.kind == "NAME" || p.is("{") {
			return "", nil, unsupported(t, "several operations or fragments in one document")
		}
		return "", nil, parseError(t)
	}
	return op, sel, nil
}

func (p *gqlParser) selectionSet() ([]*gqlField, map[string]any) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	var out []*gqlField
	for !p.is("}") {
		t := p.peek()
		switch {
		case t.kind == "PUNCT" && t.val == "...":
			return nil, unsupported(t, "fragments")
		case t.kind != "NAME":
			return nil, parseError(t)
		}
		f, err := p.field()
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, parseError(p.peek())
	}
	p.next()
	return out, nil
}

func (p *gqlParser) field() (*gqlField, map[string]any) {
	t := p.next()
	f := &gqlField{name: t.val, line: t.line, col: t.col}
	if p.is(":") {
		p.next()
		n := p.next()
		if n.kind != "NAME" {
			return nil, parseError(n)
		}
		f.alias, f.name = f.name, n.val
	}
	if p.is("(") {
		p.next()
		for !p.is(")") {
			n := p.next()
			if n.kind != "NAME" {
				return nil, parseError(n)
			}
			if err := p.expect(":"); err != nil {
				return nil, err
			}
			if err := p.skipValue(); err != nil {
				return nil, err
			}
			f.args = append(f.args, n.val)
		}
		if len(f.args) == 0 {
			return nil, parseError(p.peek())
		}
		p.next()
	}
	if p.is("@") {
		return nil, unsupported(p.peek(), "directives")
	}
	if p.is("{") {
		sel, err := p.selectionSet()
		if err != nil {
			return nil, err
		}
		f.sel = sel
	}
	return f, nil
}

func (p *gqlParser) skipValue() map[string]any {
	t := p.peek()
	switch {
	case p.is("$"):
		p.next()
		if n := p.next(); n.kind != "NAME" {
			return parseError(n)
		}
		return nil
	case p.is("["):
		return p.skipBalanced("[", "]")
	case p.is("{"):
		return p.skipBalanced("{", "}")
	case t.kind == "NAME" || t.kind == "STRING" || t.kind == "NUMBER":
		p.next()
		return nil
	}
	return parseError(t)
}

func (p *gqlParser) skipBalanced(open, close string) map[string]any {
	depth := 0
	for {
		t := p.next()
		switch {
		case t.kind == "EOF":
			return parseError(t)
		case t.kind == "PUNCT" && t.val == open:
			depth++
		case t.kind == "PUNCT" && t.val == close:
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
}
