package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// The `defaults:` merge, as dagster-cloud-cli's DagsterCloudConfigDefaultsMerger
// (dagster_cloud_cli/config/merger.py, with config/list_merge_strategies.py)
// does it. Restated behaviour:
//
//   - Only for a file with `defaults:`. None values are first dropped
//     everywhere, in the defaults and in the location (remove_none_recursively:
//     null mapping values and keys, null list items). If nothing is left of
//     the defaults, the location is used as it is.
//   - The location is merged onto a copy of the defaults, key by key
//     (_merge_dict): a key the defaults lack (or hold None for) takes the
//     location's value; when the location's value is a mapping, the two
//     mappings are merged the same way (the default's must be a mapping too);
//     when it is a list, the lists are merged by the rule for the key's path
//     (the default's must be a list too); any other value replaces the
//     default's.
//   - List rules, by the dotted path from the location's top:
//     container_context.{docker,ecs,k8s}.env_vars: by variable name (the text
//     before the first "="): the defaults' entries whose name the location
//     does not list, then all of the location's.
//     container_context.ecs.{run_sidecar_containers,server_sidecar_containers,
//     secrets,volumes}, container_context.k8s.{image_pull_secrets,volumes,
//     volume_mounts}: mappings identified by `name`; container_context.ecs.
//     {run_ecs_tags,server_ecs_tags}: identified by `key`: the defaults'
//     items whose identity the location lacks, then the location's (an
//     identity given twice in one list keeps its first place and last item).
//     container_context.k8s.{run,server}_k8s_config.container_config.{args,
//     command}: the location's list replaces the defaults'.
//     Any other list: the defaults' items then the location's, without
//     repeats (equal as Python compares: 1, 1.0 and true are one value).
//
// One deliberate difference: merger.py raises "Invalid key-value pair" for a
// default env var with two "=" (A=b=c); here its name is the text before the
// first "=", as for the location's.
type listRule int

const (
	dedupeList listRule = iota
	replaceList
	byEnvName
	byName
	byKey
)

var listRules = map[string]listRule{
	"container_context.docker.env_vars":                                byEnvName,
	"container_context.ecs.env_vars":                                   byEnvName,
	"container_context.ecs.run_sidecar_containers":                     byName,
	"container_context.ecs.secrets":                                    byName,
	"container_context.ecs.server_sidecar_containers":                  byName,
	"container_context.ecs.volumes":                                    byName,
	"container_context.ecs.run_ecs_tags":                               byKey,
	"container_context.ecs.server_ecs_tags":                            byKey,
	"container_context.k8s.env_vars":                                   byEnvName,
	"container_context.k8s.image_pull_secrets":                         byName,
	"container_context.k8s.run_k8s_config.container_config.args":       replaceList,
	"container_context.k8s.run_k8s_config.container_config.command":    replaceList,
	"container_context.k8s.server_k8s_config.container_config.args":    replaceList,
	"container_context.k8s.server_k8s_config.container_config.command": replaceList,
	"container_context.k8s.volumes":                                    byName,
	"container_context.k8s.volume_mounts":                              byName,
}

// merger merges the defaults into locations; what merger.py would fail on
// (check.invariant, a wrong item type, a missing name) is an error here.
type merger struct {
	file  string
	where string // `location "a"`, for messages
	errs  Errors
	conv  *converter
}

func (m *merger) fail(line int, format string, args ...any) {
	m.errs = append(m.errs, &Error{File: m.file, Line: line, Msg: m.where + ": " + fmt.Sprintf(format, args...)})
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

// mergeMapping merges from (the location's) onto onto (the defaults').
// Neither is changed; the result shares their nodes.
func (m *merger) mergeMapping(path string, onto, from *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: from.Tag, Style: from.Style, Line: from.Line, Column: from.Column}
	out.Content = slices.Clone(onto.Content)
	index := map[string]int{}
	for i := 0; i+1 < len(out.Content); i += 2 {
		index[nodeKey(out.Content[i], m.conv)] = i
	}
	for i := 0; i+1 < len(from.Content); i += 2 {
		k, v := from.Content[i], from.Content[i+1]
		key := nodeKey(k, m.conv)
		j, ok := index[key]
		if !ok {
			index[key] = len(out.Content)
			out.Content = append(out.Content, k, v)
			continue
		}
		cur := out.Content[j+1]
		p := joinPath(path, m.conv.jsonKey(k))
		switch {
		case isNull(cur):
			out.Content[j+1] = v
		case v.Kind == yaml.MappingNode:
			if cur.Kind != yaml.MappingNode {
				m.fail(v.Line, "%s is a mapping but defaults.%s (line %d) is %s; dagster-cloud's defaults merger cannot merge them", p, p, cur.Line, typeName(cur))
				continue
			}
			out.Content[j+1] = m.mergeMapping(p, cur, v)
		case v.Kind == yaml.SequenceNode:
			if cur.Kind != yaml.SequenceNode {
				m.fail(v.Line, "%s is a list but defaults.%s (line %d) is %s; dagster-cloud's defaults merger cannot merge them", p, p, cur.Line, typeName(cur))
				continue
			}
			out.Content[j+1] = m.mergeList(p, v, cur)
		default:
			out.Content[j+1] = v
		}
		// The defaults' key stays, as in a Python dict.
	}
	return out
}

// mergeList merges the location's list (from) with the defaults' (onto)
// by the rule for path.
func (m *merger) mergeList(path string, from, onto *yaml.Node) *yaml.Node {
	out := &yaml.Node{Kind: yaml.SequenceNode, Tag: from.Tag, Style: from.Style, Line: from.Line, Column: from.Column}
	switch listRules[path] {
	case replaceList:
		out.Content = from.Content
	case byEnvName:
		names := map[string]bool{}
		for _, x := range from.Content {
			if n, ok := m.envName(path, x); ok {
				names[n] = true
			}
		}
		for _, x := range onto.Content {
			if n, ok := m.envName("defaults."+path, x); ok && !names[n] {
				out.Content = append(out.Content, x)
			}
		}
		out.Content = append(out.Content, from.Content...)
	case byName:
		out.Content = m.byIdentity(path, "name", from, onto)
	case byKey:
		out.Content = m.byIdentity(path, "key", from, onto)
	default:
		seen := map[string]bool{}
		for _, x := range slices.Concat(onto.Content, from.Content) {
			if k := nodeKey(x, m.conv); !seen[k] {
				seen[k] = true
				out.Content = append(out.Content, x)
			}
		}
	}
	return out
}

// envName is the name of a KEY=VALUE entry; entries must be strings.
func (m *merger) envName(path string, x *yaml.Node) (string, bool) {
	if !isStringScalar(x) {
		m.fail(x.Line, "every entry of %s must be a string (NAME=value) for dagster-cloud's defaults merger, but this is %s", path, typeName(x))
		return "", false
	}
	name, _, _ := strings.Cut(x.Value, "=")
	return name, true
}

// byIdentity is the merge of lists of mappings identified by the value of
// their key id: onto's items whose identity from lacks, then from's. Within
// each list an identity given twice keeps its first place and last item
// (a Python dict built from the list).
func (m *merger) byIdentity(path, id string, from, onto *yaml.Node) []*yaml.Node {
	type entry struct {
		key  string
		item *yaml.Node
	}
	collect := func(what string, l *yaml.Node) ([]entry, map[string]int) {
		var out []entry
		index := map[string]int{}
		for _, x := range l.Content {
			if x.Kind != yaml.MappingNode {
				m.fail(x.Line, "every item of %s must be a mapping with a `%s` for dagster-cloud's defaults merger, but this is %s", what, id, typeName(x))
				continue
			}
			var idNode *yaml.Node
			for i := 0; i+1 < len(x.Content); i += 2 {
				if isStringScalar(x.Content[i]) && x.Content[i].Value == id {
					idNode = x.Content[i+1]
				}
			}
			if idNode == nil {
				m.fail(x.Line, "this item of %s has no `%s`, which dagster-cloud's defaults merger needs to merge it", what, id)
				continue
			}
			if idNode.Kind != yaml.ScalarNode {
				m.fail(idNode.Line, "the `%s` of an item of %s must be a single value, not %s", id, what, typeName(idNode))
				continue
			}
			k := nodeKey(idNode, m.conv)
			if i, dup := index[k]; dup {
				out[i].item = x
				continue
			}
			index[k] = len(out)
			out = append(out, entry{k, x})
		}
		return out, index
	}
	fromItems, fromIndex := collect(path, from)
	ontoItems, _ := collect("defaults."+path, onto)
	var out []*yaml.Node
	for _, e := range ontoItems {
		if _, overridden := fromIndex[e.key]; !overridden {
			out = append(out, e.item)
		}
	}
	for _, e := range fromItems {
		out = append(out, e.item)
	}
	return out
}

// removeNone is dagster's remove_none_recursively on a node: mapping pairs
// with a null key or value, and null list items, are dropped, at every
// depth. Unchanged nodes are shared.
func removeNone(n *yaml.Node) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		var content []*yaml.Node
		changed := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isNull(k) || isNull(v) {
				changed = true
				continue
			}
			rk, rv := removeNone(k), removeNone(v)
			changed = changed || rk != k || rv != v
			content = append(content, rk, rv)
		}
		if !changed {
			return n
		}
		cp := *n
		cp.Content = content
		return &cp
	case yaml.SequenceNode:
		if nodeTag(n) != tagSeq {
			return n // !!omap, !!pairs: left as they are
		}
		var content []*yaml.Node
		changed := false
		for _, x := range n.Content {
			if isNull(x) {
				changed = true
				continue
			}
			rx := removeNone(x)
			changed = changed || rx != x
			content = append(content, rx)
		}
		if !changed {
			return n
		}
		cp := *n
		cp.Content = content
		return &cp
	}
	return n
}
