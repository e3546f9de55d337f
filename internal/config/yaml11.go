package config

import (
	"fmt"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// dagster-cloud reads dagster_cloud.yaml with PyYAML's yaml.safe_load, which
// implements YAML 1.1, while yaml.v3 resolves plain scalars by YAML 1.2
// rules. This file restates PyYAML's behaviour (yaml/resolver.py: the
// implicit resolvers; yaml/constructor.py: SafeConstructor) so that a value
// means here what it means to dagster-cloud.
//
// A plain (unquoted) scalar is, in this order of checks:
//
//	bool       yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF
//	float      [-+]?[0-9][0-9_]*\.[0-9_]*([eE][-+][0-9]+)?   (1.5, 1., 1_0.5, 1.0e+3; not 1e3, not 1.0e3)
//	           \.[0-9][0-9_]*([eE][-+][0-9]+)?              (.5; no sign allowed: -.5 is a string)
//	           [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*    (base 60: 1:30.5 = 90.5)
//	           [-+]?\.(inf|Inf|INF)   \.(nan|NaN|NAN)
//	int        [-+]?0b[01_]+ (binary)   [-+]?0[0-7_]+ (octal: 017 = 15; 0o17 is a string)
//	           [-+]?(0|[1-9][0-9_]*)    [-+]?0x[0-9a-fA-F_]+
//	           [-+]?[1-9][0-9_]*(:[0-5]?[0-9])+ (base 60: 1:30 = 90)
//	merge      <<
//	null       ~ null Null NULL and the empty scalar
//	timestamp  2001-12-14, 2001-12-14t21:59:43.10-05:00, ... (PyYAML makes a date;
//	           we keep the string, which is what a JSON document can carry)
//	value      =  (PyYAML has no constructor for it: an error, except as a key)
//	str        anything else
//
// Underscores in numbers are dropped. Quoted, literal (|) and folded (>)
// scalars are always strings. An explicit tag (!!str, !!int, !!float,
// !!bool, !!null, !!binary, !!timestamp, !!map, !!seq, !!omap, !!pairs,
// !!set) is constructed as SafeConstructor does; any other tag is an error.
var (
	reBool      = regexp.MustCompile(`^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$`)
	reFloat     = regexp.MustCompile(`^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$`)
	reInt       = regexp.MustCompile(`^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$`)
	reNull      = regexp.MustCompile(`^(?:~|null|Null|NULL|)$`)
	reTimestamp = regexp.MustCompile(`^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$`)
)

// Short tags of the YAML types.
const (
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagNull      = "!!null"
	tagTimestamp = "!!timestamp"
	tagBinary    = "!!binary"
	tagMerge     = "!!merge"
	tagValue     = "!!value"
	tagMap       = "!!map"
	tagSeq       = "!!seq"
	tagSet       = "!!set"
	tagOmap      = "!!omap"
	tagPairs     = "!!pairs"
)

// resolvePlain is the tag PyYAML gives a plain scalar. Like PyYAML, it
// tries only the resolvers registered for the scalar's first character.
func resolvePlain(s string) string {
	if s == "" {
		return tagNull
	}
	c := s[0]
	switch {
	case strings.IndexByte("yYnNtTfFoO", c) >= 0 && reBool.MatchString(s):
		return tagBool
	case strings.IndexByte("-+0123456789.", c) >= 0 && reFloat.MatchString(s):
		return tagFloat
	case strings.IndexByte("-+0123456789", c) >= 0 && reInt.MatchString(s):
		return tagInt
	case s == "<<":
		return tagMerge
	case strings.IndexByte("~nN", c) >= 0 && reNull.MatchString(s):
		return tagNull
	case c >= '0' && c <= '9' && reTimestamp.MatchString(s):
		return tagTimestamp
	case s == "=":
		return tagValue
	}
	return tagStr
}

// explicitTag reports the tag written in the file (!!str, !foo), if any.
// yaml.v3 marks explicit tags with TaggedStyle; "!" is not one (a plain
// scalar with it is resolved as usual).
func explicitTag(n *yaml.Node) (string, bool) {
	if n.Style&yaml.TaggedStyle != 0 && n.Tag != "" && n.Tag != "!" {
		return n.Tag, true
	}
	return "", false
}

// nodeTag is the tag PyYAML would construct n with.
func nodeTag(n *yaml.Node) string {
	if t, ok := explicitTag(n); ok {
		return t
	}
	switch n.Kind {
	case yaml.MappingNode:
		return tagMap
	case yaml.SequenceNode:
		return tagSeq
	case yaml.ScalarNode:
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return tagStr
		}
		return resolvePlain(n.Value)
	case yaml.AliasNode:
		if n.Alias != nil {
			return nodeTag(n.Alias)
		}
	}
	return ""
}

// isNull reports a node that PyYAML loads as None.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && nodeTag(n) == tagNull
}

// isMergeKey reports the key of a merge (`<<: *base`).
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && nodeTag(k) == tagMerge
}

// isStringScalar reports a scalar that dagster-cloud reads as a string (a
// timestamp is one here, see above).
func isStringScalar(n *yaml.Node) bool {
	if n.Kind != yaml.ScalarNode {
		return false
	}
	t := nodeTag(n)
	return t == tagStr || t == tagTimestamp
}

// typeName names what YAML 1.1 makes of a node, for error messages.
func typeName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch nodeTag(n) {
	case tagNull:
		return "null"
	case tagBool:
		return "a boolean"
	case tagInt:
		return "an integer"
	case tagFloat:
		return "a number"
	case tagStr, tagTimestamp:
		return "a string"
	case tagBinary:
		return "binary data"
	}
	return "a value tagged " + nodeTag(n)
}

// converter turns resolved nodes (no aliases, merges flattened) into the
// values PyYAML constructs, as JSON-able Go values: map[string]any, []any,
// string, bool, int or *big.Int, float64 and nil. In json mode it also
// refuses what Python's json.dumps could not send (binary data, sets, NaN
// and infinities). Problems are collected in errs.
type converter struct {
	file string
	json bool
	errs Errors
	nans int // NaN is never equal to anything, not even another NaN
}

func (c *converter) fail(n *yaml.Node, format string, args ...any) {
	c.errs = append(c.errs, &Error{File: c.file, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	}
	return "scalar"
}

func (c *converter) value(n *yaml.Node) any {
	tag := nodeTag(n)
	switch n.Kind {
	case yaml.MappingNode:
		switch tag {
		case tagMap:
			m := make(map[string]any, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				m[c.jsonKey(n.Content[i])] = c.value(n.Content[i+1])
			}
			return m
		case tagSet:
			if c.json {
				c.fail(n, "a set (!!set) cannot be sent as JSON; write a list")
				return nil
			}
			for i := 0; i+1 < len(n.Content); i += 2 {
				c.value(n.Content[i])
			}
			return nil
		case tagOmap, tagPairs, tagSeq:
			c.fail(n, "expected a sequence node for the tag %s, but found a mapping", tag)
			return nil
		case tagStr, tagInt, tagFloat, tagBool, tagNull, tagBinary, tagTimestamp:
			c.fail(n, "expected a scalar node for the tag %s, but found a mapping", tag)
			return nil
		}
	case yaml.SequenceNode:
		switch tag {
		case tagSeq:
			l := make([]any, len(n.Content))
			for i, x := range n.Content {
				l[i] = c.value(x)
			}
			return l
		case tagOmap, tagPairs:
			// A list of (key, value) tuples, which json.dumps writes as
			// two-element lists.
			l := make([]any, 0, len(n.Content))
			for _, x := range n.Content {
				if x.Kind != yaml.MappingNode || len(x.Content) != 2 {
					c.fail(x, "%s expects a list of single-key mappings", tag)
					continue
				}
				l = append(l, []any{c.value(x.Content[0]), c.value(x.Content[1])})
			}
			return l
		case tagMap, tagSet:
			c.fail(n, "expected a mapping node for the tag %s, but found a sequence", tag)
			return nil
		case tagStr, tagInt, tagFloat, tagBool, tagNull, tagBinary, tagTimestamp:
			c.fail(n, "expected a scalar node for the tag %s, but found a sequence", tag)
			return nil
		}
	case yaml.ScalarNode:
		return c.scalar(n, tag, false)
	case yaml.AliasNode:
		if n.Alias != nil {
			return c.value(n.Alias)
		}
	}
	c.fail(n, "could not determine a constructor for the tag %q (PyYAML's safe_load, which dagster-cloud uses, rejects it)", tag)
	return nil
}

// scalar constructs a scalar; as a mapping key (key true), infinities and
// NaN are fine (json.dumps writes them as "Infinity" and "NaN" keys).
func (c *converter) scalar(n *yaml.Node, tag string, key bool) any {
	switch tag {
	case tagNull:
		return nil
	case tagStr, tagTimestamp:
		return n.Value
	case tagBool:
		switch strings.ToLower(n.Value) {
		case "yes", "true", "on":
			return true
		case "no", "false", "off":
			return false
		}
		c.fail(n, "%q is not a boolean (!!bool takes yes, no, true, false, on or off)", n.Value)
		return nil
	case tagInt:
		v, err := constructInt(n.Value)
		if err != nil {
			c.fail(n, "%q is not an integer", n.Value)
			return nil
		}
		return v
	case tagFloat:
		f, err := constructFloat(n.Value)
		if err != nil {
			c.fail(n, "%q is not a number", n.Value)
			return nil
		}
		if c.json && !key && (math.IsInf(f, 0) || math.IsNaN(f)) {
			c.fail(n, "%s is not a number JSON can carry; quote it if it is meant as a string", n.Value)
			return nil
		}
		return f
	case tagBinary:
		if c.json {
			c.fail(n, "binary data (!!binary) cannot be sent as JSON")
		}
		return nil
	case tagValue:
		if key {
			return n.Value // PyYAML turns a `=` key into the string "="
		}
		c.fail(n, "a plain `=` cannot be loaded by PyYAML (it has no constructor for the tag yaml.org,2002:value); quote it")
		return nil
	case tagMerge:
		c.fail(n, "a plain `<<` is a merge key; as a value PyYAML cannot load it; quote it")
		return nil
	case tagMap, tagSeq, tagSet, tagOmap, tagPairs:
		c.fail(n, "expected a %s node for the tag %s, but found a scalar", map[string]string{tagMap: "mapping", tagSet: "mapping", tagSeq: "sequence", tagOmap: "sequence", tagPairs: "sequence"}[tag], tag)
		return nil
	}
	c.fail(n, "could not determine a constructor for the tag %q (PyYAML's safe_load, which dagster-cloud uses, rejects it)", tag)
	return nil
}

// keyValue constructs a mapping key.
func (c *converter) keyValue(k *yaml.Node) any {
	if k.Kind != yaml.ScalarNode {
		c.fail(k, "a %s cannot be a mapping key (PyYAML: found unhashable key)", kindName(k))
		return nil
	}
	return c.scalar(k, nodeTag(k), true)
}

// jsonKey is the JSON object key a mapping key becomes, as Python's
// json.dumps writes it: strings as they are, True as "true", 1 as "1",
// 1.5 as "1.5", None as "null".
func (c *converter) jsonKey(k *yaml.Node) string {
	return jsonKeyString(c.keyValue(k))
}

func jsonKeyString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case int:
		return strconv.Itoa(v)
	case *big.Int:
		return v.String()
	case float64:
		return pyFloatRepr(v)
	}
	return fmt.Sprint(v)
}

// canonical is a key under which two values are equal when Python finds
// them equal (and hashes them alike): 1, 1.0 and True are one key; a
// mapping equals the list of its sorted (key, value) pairs, as dagster's
// hash_collection makes them. NaN equals nothing.
func (c *converter) canonical(v any) string {
	var b strings.Builder
	c.writeCanonical(&b, v)
	return b.String()
}

func (c *converter) writeCanonical(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("N")
	case string:
		b.WriteString("S")
		b.WriteString(strconv.Quote(v))
	case bool:
		if v {
			b.WriteString("I1")
		} else {
			b.WriteString("I0")
		}
	case int:
		b.WriteString("I")
		b.WriteString(strconv.Itoa(v))
	case *big.Int:
		b.WriteString("I")
		b.WriteString(v.String())
	case float64:
		switch {
		case math.IsNaN(v):
			c.nans++
			fmt.Fprintf(b, "NaN%d", c.nans)
		case math.IsInf(v, 0):
			fmt.Fprintf(b, "F%v", v)
		case v == math.Trunc(v):
			i, _ := big.NewFloat(v).Int(nil)
			b.WriteString("I")
			b.WriteString(i.String())
		default:
			b.WriteString("F")
			b.WriteString(pyFloatRepr(v))
		}
	case []any:
		b.WriteString("(")
		for _, x := range v {
			c.writeCanonical(b, x)
			b.WriteString(",")
		}
		b.WriteString(")")
	case map[string]any:
		// The keys are JSON strings by now; sorted, as hash_collection sorts.
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteString("(")
		for _, k := range keys {
			b.WriteString("(S")
			b.WriteString(strconv.Quote(k))
			b.WriteString(",")
			c.writeCanonical(b, v[k])
			b.WriteString("),")
		}
		b.WriteString(")")
	default:
		fmt.Fprintf(b, "?%v", v)
	}
}

// nodeKey is the canonical key of a node's value (see canonical). Problems
// in the node are not reported here: the conversion of the whole file does.
func nodeKey(n *yaml.Node, scratch *converter) string {
	errs := len(scratch.errs)
	var v any
	if n.Kind == yaml.ScalarNode {
		v = scratch.scalar(n, nodeTag(n), true)
	} else {
		v = scratch.value(n)
	}
	if len(scratch.errs) > errs {
		scratch.errs = scratch.errs[:errs]
		return "?" + strconv.Quote(n.Value) + strconv.Itoa(n.Line) + ":" + strconv.Itoa(n.Column)
	}
	return scratch.canonical(v)
}

// constructInt is PyYAML's construct_yaml_int: underscores dropped, a sign,
// then 0b binary, 0x hex, a leading 0 octal, base 60 with ':', else decimal.
func constructInt(s string) (any, error) {
	s = strings.TrimSpace(strings.ReplaceAll(s, "_", ""))
	if s == "" {
		return nil, strconv.ErrSyntax
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg, s = s[0] == '-', s[1:]
	}
	v := new(big.Int)
	var ok bool
	switch {
	case s == "0":
		v, ok = big.NewInt(0), true
	case strings.HasPrefix(s, "0b"):
		_, ok = v.SetString(s[2:], 2)
	case strings.HasPrefix(s, "0x"):
		_, ok = v.SetString(s[2:], 16)
	case strings.HasPrefix(s, "0"):
		_, ok = v.SetString(s, 8)
	case strings.Contains(s, ":"):
		ok = true
		for _, part := range strings.Split(s, ":") {
			d, good := new(big.Int).SetString(part, 10)
			if !good {
				ok = false
				break
			}
			v.Mul(v, big.NewInt(60)).Add(v, d)
		}
	default:
		_, ok = v.SetString(s, 10)
	}
	if !ok || s == "" {
		return nil, strconv.ErrSyntax
	}
	if neg {
		v.Neg(v)
	}
	if v.IsInt64() && strconv.IntSize == 64 {
		return int(v.Int64()), nil
	}
	return v, nil
}

// constructFloat is PyYAML's construct_yaml_float: underscores dropped,
// lower case, a sign, .inf, .nan, base 60 with ':', else Python's float().
func constructFloat(s string) (float64, error) {
	s = strings.ToLower(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
	if s == "" {
		return 0, strconv.ErrSyntax
	}
	sign := 1.0
	if s[0] == '-' || s[0] == '+' {
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
	}
	switch {
	case s == ".inf":
		return sign * math.Inf(1), nil
	case s == ".nan":
		return math.NaN(), nil
	case strings.Contains(s, ":"):
		v := 0.0
		for _, part := range strings.Split(s, ":") {
			d, err := parsePyFloat(part)
			if err != nil {
				return 0, err
			}
			v = v*60 + d
		}
		return sign * v, nil
	}
	v, err := parsePyFloat(s)
	return sign * v, err
}

// parsePyFloat is Python's float() on a string without underscores.
func parsePyFloat(s string) (float64, error) {
	if strings.HasPrefix(s, "0x") || strings.ContainsAny(s, "pP") || s == "" {
		return 0, strconv.ErrSyntax // Go would read hex floats; Python does not
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errorsIsRange(err) {
		return 0, err
	}
	return v, nil // out of range: ±Inf, as in Python
}

func errorsIsRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// pyFloatRepr formats f as Python's repr(float) does: the shortest digits
// that round-trip, in fixed notation with at least one decimal when the
// decimal exponent is in [-4, 16), else as d.ddde+XX.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN" // as json.dumps writes it
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	e := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±XX
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		return fmt.Sprintf("%s%se%s%02d", sign, m, es, exp)
	}
	var s string
	switch {
	case exp < 0:
		s = "0." + strings.Repeat("0", -exp-1) + digits
	case exp+1 >= len(digits):
		s = digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	default:
		s = digits[:exp+1] + "." + digits[exp+1:]
	}
	return sign + s
}
