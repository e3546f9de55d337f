package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"gopkg.in/yaml.v3"
)

// Bounds on what aliases may add to a file. yaml.v3 keeps an alias as a
// pointer to its anchor; expanded, a few lines can stand for billions of
// nodes (a "billion laughs"). Every node and byte of scalar text an alias
// stands for is counted, and a file whose aliases add more than these is
// refused at the alias that crossed the bound. Resolved nodes are shared, not
// copied, so memory stays proportional to the file; what walks the expanded
// tree (validation, conversion to a document) is bounded by these.
const (
	maxAliasNodes = 100_000
	maxAliasBytes = 10 << 20
	// maxDocumentNodes bounds the location documents: `defaults:` is
	// merged into every location, so a large defaults section times many
	// locations is a bomb of its own.
	maxDocumentNodes = 1_000_000
	maxDocumentBytes = 64 << 20
)

// decodeSingle parses data as exactly one YAML document, as PyYAML's
// safe_load does. It returns nil and no error for a stream with no
// document (empty, or only comments).
func decodeSingle(path string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(path, data, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(path, data, err)
	default:
		return nil, &Error{File: path, Line: next.Line, Msg: "a second YAML document starts here; the file must hold exactly one (PyYAML's safe_load, which dagster-cloud uses, rejects several)"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

var reUnknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

// syntaxError is a yaml.v3 parse error at its line. yaml.v3 gives no line
// for an alias to an undefined anchor: it is the first line with the alias.
func syntaxError(path string, data []byte, err error) *Error {
	line, msg := yamlErrorLine(err)
	if m := reUnknownAnchor.FindStringSubmatch(msg); m != nil && line == 0 {
		for i, l := range bytes.Split(data, []byte("\n")) {
			if j := bytes.Index(l, []byte("*"+m[1])); j >= 0 {
				rest := l[j+1+len(m[1]):]
				if len(rest) == 0 || bytes.ContainsAny(rest[:1], " \t\r,]}#") {
					line = i + 1
					break
				}
			}
		}
	}
	return &Error{File: path, Line: line, Msg: "invalid YAML: " + msg}
}

// size is the expanded size of a resolved node.
type size struct{ nodes, bytes int }

// resolver replaces aliases by their anchor's (resolved) node and flattens
// merge keys, as PyYAML's composer and SafeConstructor.flatten_mapping do:
//
//   - `<<: {mapping}` puts the mapping's pairs into the enclosing mapping;
//     `<<: [m1, m2]` puts those of every mapping, an earlier one winning over
//     a later one; the mapping's own keys win over all merged ones.
//   - A key given twice keeps its last value (PyYAML does not complain; we
//     add a warning when both are written in the same mapping).
//   - A list or mapping as a key is an error ("unhashable key"), as is an
//     alias to a node that contains it (json.dumps cannot send the
//     recursive structure PyYAML would build).
//
// A resolved node keeps the line of the node it was made from, so an error
// in aliased content points at the line where that content is written.
type resolver struct {
	file    string
	errs    Errors
	warns   []*Error
	bomb    *Error
	memo    map[*yaml.Node]*yaml.Node // anchored node -> its resolved node
	busy    map[*yaml.Node]bool       // anchored nodes being resolved
	sizes   map[*yaml.Node]size       // resolved node -> expanded size
	added   size                      // what aliases have added so far
	scratch converter                 // for mapping-key identity
}

func newResolver(file string) *resolver {
	return &resolver{
		file:    file,
		memo:    map[*yaml.Node]*yaml.Node{},
		busy:    map[*yaml.Node]bool{},
		sizes:   map[*yaml.Node]size{},
		scratch: converter{file: file},
	}
}

func (r *resolver) fail(line int, format string, args ...any) {
	r.errs = append(r.errs, &Error{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// resolve returns n with aliases and merge keys resolved; after a bomb it
// returns at once.
func (r *resolver) resolve(n *yaml.Node) *yaml.Node {
	if r.bomb != nil {
		return n
	}
	if n.Kind == yaml.AliasNode {
		return r.alias(n)
	}
	if n.Anchor != "" {
		if res, ok := r.memo[n]; ok {
			return res
		}
		r.busy[n] = true
		defer delete(r.busy, n)
	}
	var res *yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		res = r.mapping(n)
	case yaml.SequenceNode:
		cp := *n
		cp.Content = make([]*yaml.Node, 0, len(n.Content))
		s := size{nodes: 1}
		for _, c := range n.Content {
			rc := r.resolve(c)
			if r.bomb != nil {
				return n
			}
			cp.Content = append(cp.Content, rc)
			s = s.add(r.sizes[rc])
		}
		cp.Anchor, cp.Alias = "", nil
		res = &cp
		r.sizes[res] = s
	default:
		res = n
		r.sizes[res] = size{nodes: 1, bytes: len(n.Value)}
	}
	if n.Anchor != "" {
		r.memo[n] = res
	}
	return res
}

func (s size) add(o size) size { return size{s.nodes + o.nodes, s.bytes + o.bytes} }

func (r *resolver) alias(n *yaml.Node) *yaml.Node {
	t := n.Alias
	placeholder := &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Value: "~", Line: n.Line, Column: n.Column}
	r.sizes[placeholder] = size{nodes: 1}
	if t == nil {
		r.fail(n.Line, "unknown anchor %q", n.Value)
		return placeholder
	}
	if r.busy[t] {
		r.fail(n.Line, "alias *%s refers to the node that contains it; such a recursive structure cannot be sent as JSON", n.Value)
		return placeholder
	}
	res := r.resolve(t)
	if r.bomb != nil {
		return placeholder
	}
	s := r.sizes[res]
	r.added = r.added.add(s)
	switch {
	case r.added.nodes > maxAliasNodes:
		r.bomb = &Error{File: r.file, Line: n.Line, Msg: fmt.Sprintf("alias *%s: the file's aliases expand to more than %d nodes: is it an alias bomb?", n.Value, maxAliasNodes)}
	case r.added.bytes > maxAliasBytes:
		r.bomb = &Error{File: r.file, Line: n.Line, Msg: fmt.Sprintf("alias *%s: the file's aliases expand to more than %d MiB of text: is it an alias bomb?", n.Value, maxAliasBytes>>20)}
	}
	if r.bomb != nil {
		return placeholder
	}
	return res
}

// pair is one key and value of a mapping, and whether it came from a merge.
type pair struct {
	k, v   *yaml.Node
	merged bool
}

func (r *resolver) mapping(n *yaml.Node) *yaml.Node {
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := r.resolve(n.Content[i])
		v := r.resolve(n.Content[i+1])
		if r.bomb != nil {
			return n
		}
		if isMergeKey(k) {
			merged = append(merged, r.mergeValue(v)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			r.fail(k.Line, "a %s cannot be a mapping key (PyYAML: found unhashable key)", kindName(k))
			continue
		}
		own = append(own, pair{k: k, v: v})
	}
	// Merged pairs first, then the mapping's own: a later pair with the
	// same key replaces the earlier one's value, in the earlier one's place.
	all := append(merged, own...)
	index := make(map[string]int, len(all))
	out := make([]pair, 0, len(all))
	for _, p := range all {
		key := nodeKey(p.k, &r.scratch)
		if i, dup := index[key]; dup {
			if !p.merged && !out[i].merged {
				r.warns = append(r.warns, &Error{File: r.file, Line: p.k.Line, Msg: fmt.Sprintf("duplicate key %q (also at line %d): the last one wins, as in PyYAML", p.k.Value, out[i].k.Line)})
			}
			// The first key stays (a Python dict keeps the key object it
			// has), with the last value.
			out[i] = pair{k: out[i].k, v: p.v, merged: p.merged}
			continue
		}
		index[key] = len(out)
		out = append(out, p)
	}
	cp := *n
	cp.Anchor, cp.Alias = "", nil
	cp.Content = make([]*yaml.Node, 0, 2*len(out))
	s := size{nodes: 1}
	for _, p := range out {
		cp.Content = append(cp.Content, p.k, p.v)
		s = s.add(r.sizes[p.k]).add(r.sizes[p.v])
	}
	r.sizes[&cp] = s
	return &cp
}

// mergeValue is the pairs a `<<` brings: those of a mapping, or of a list
// of mappings with earlier ones first (so that they win).
func (r *resolver) mergeValue(v *yaml.Node) []pair {
	var from []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		from = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, m := range v.Content {
			if m.Kind != yaml.MappingNode {
				r.fail(m.Line, "`<<` (a merge key) needs mappings to merge, but found %s", typeName(m))
				continue
			}
			from = append(from, m)
		}
		// PyYAML merges the list's mappings in reverse order, and a later
		// pair wins: so the first mapping wins.
		for i, j := 0, len(from)-1; i < j; i, j = i+1, j-1 {
			from[i], from[j] = from[j], from[i]
		}
	default:
		r.fail(v.Line, "`<<` (a merge key) needs a mapping or a list of mappings to merge, but found %s", typeName(v))
		return nil
	}
	var out []pair
	for _, m := range from {
		for i := 0; i+1 < len(m.Content); i += 2 {
			out = append(out, pair{k: m.Content[i], v: m.Content[i+1], merged: true})
		}
	}
	return out
}

// sizeOf is the expanded size of a node made after resolution (a merged
// document), from the sizes of the resolved nodes it shares.
func (r *resolver) sizeOf(n *yaml.Node) size {
	if s, ok := r.sizes[n]; ok {
		return s
	}
	s := size{nodes: 1, bytes: len(n.Value)}
	for _, c := range n.Content {
		s = s.add(r.sizeOf(c))
	}
	r.sizes[n] = s
	return s
}

// ReadYAML reads a YAML file as PyYAML's safe_load reads it (one document,
// anchors, aliases and merge keys resolved with the alias-bomb bounds, YAML
// 1.1 scalars), into JSON-able values: map[string]any, []any, strings,
// booleans, numbers and nil. It does no dagster_cloud.yaml validation: it is
// for commands that, like dagster-cloud's, send a file's entry as it is.
// Errors have the file and line.
func ReadYAML(path string) (any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if line, col, ok := invalidUTF8(data); ok {
		return nil, &Error{File: path, Line: line, Msg: fmt.Sprintf("invalid UTF-8 at byte %d of the line; save the file as UTF-8", col)}
	}
	root, perr := decodeSingle(path, data)
	if perr != nil {
		return nil, perr
	}
	if root == nil {
		return nil, nil
	}
	r := newResolver(path)
	root = r.resolve(root)
	if r.bomb != nil {
		return nil, r.bomb
	}
	if len(r.errs) > 0 {
		return nil, dedupe(r.errs)
	}
	c := converter{file: path, json: true}
	v := c.value(root)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return v, nil
}
