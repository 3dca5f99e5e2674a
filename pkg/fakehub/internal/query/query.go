// Package query evaluates the subset of IoT Hub's query language that fakehub serves on
// POST /devices/query (docs/iothub-behavior.md §13.5):
//
//	SELECT * FROM devices [WHERE condition]
//	SELECT * FROM devices.modules [WHERE condition]
//
// A condition compares a property path (deviceId, moduleId, status, tags.a.b,
// properties.desired.x, properties.reported.y, any member of the twin JSON) with a constant
// ('text' or "text", a number, true, false, null) using = != <> < <= > >=, tests membership
// with IN [c1, c2, ...] or NOT IN, or calls IS_DEFINED(path); conditions combine with AND, OR,
// NOT and parentheses. As on IoT Hub, a comparison with a missing property, or between a
// string and a number, is false. Anything else (projections, COUNT(), GROUP BY, TOP, other
// collections, other functions) is refused by Parse with an error naming what is not
// supported and what is.
package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Supported is the one-line summary of what Parse accepts, for error messages.
const Supported = "SELECT * FROM devices | devices.modules [WHERE path op constant, path IN [..], IS_DEFINED(path), AND, OR, NOT, ( )]"

// ErrUnsupported is wrapped by the errors of Parse for queries outside the supported subset
// (as opposed to malformed ones).
var ErrUnsupported = errors.New("not supported by fakehub")

// Query is a parsed query.
type Query struct {
	Modules bool // FROM devices.modules
	where   expr // nil: every twin
}

// Match reports whether the twin document (the JSON of GET /twins/{id}, decoded into
// map[string]any) satisfies the WHERE condition.
func (q *Query) Match(doc map[string]any) bool {
	if q.where == nil {
		return true
	}
	return q.where.eval(doc) == tTrue
}

// Parse parses a query. Keywords are case-insensitive; property names are not.
func Parse(sql string) (*Query, error) {
	toks, err := lex(sql)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	q, err := p.query()
	if err != nil {
		return nil, err
	}
	return q, nil
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%s is %w (it serves %s)", fmt.Sprintf(format, args...), ErrUnsupported, Supported)
}

// --- lexer ---

type kind int

const (
	kEOF kind = iota
	kIdent
	kString
	kNumber
	kOp // = != <> < <= > >= ( ) [ ] , *
)

type token struct {
	kind kind
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'' || c == '"':
			j := i + 1
			var b strings.Builder
			for ; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					b.WriteByte(s[j])
					continue
				}
				if s[j] == c {
					break
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, fmt.Errorf("query: unterminated string starting at position %d", i)
			}
			out = append(out, token{kString, b.String(), i})
			i = j + 1
		case c >= '0' && c <= '9' || (c == '-' || c == '.') && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' && !afterValue(out):
			j := i + 1
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E' ||
				(s[j] == '-' || s[j] == '+') && (s[j-1] == 'e' || s[j-1] == 'E')) {
				j++
			}
			out = append(out, token{kNumber, s[i:j], i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && (isIdentStart(s[j]) || s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
				j++
			}
			out = append(out, token{kIdent, s[i:j], i})
			i = j
		default:
			for _, op := range []string{"!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", "[", "]", ",", "*"} {
				if strings.HasPrefix(s[i:], op) {
					out = append(out, token{kOp, op, i})
					i += len(op)
					goto next
				}
			}
			return nil, fmt.Errorf("query: unexpected character %q at position %d", c, i)
		next:
		}
	}
	return append(out, token{kEOF, "", len(s)}), nil
}

// afterValue reports whether the last token ends a value (so '-' is not a sign).
func afterValue(toks []token) bool {
	if len(toks) == 0 {
		return false
	}
	t := toks[len(toks)-1]
	return t.kind == kIdent || t.kind == kString || t.kind == kNumber || t.text == ")" || t.text == "]"
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$'
}

// --- parser ---

type parser struct {
	toks []token
	i    int
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token { t := p.toks[p.i]; p.i++; return t }

func (p *parser) keyword(k string) bool {
	if t := p.peek(); t.kind == kIdent && strings.EqualFold(t.text, k) {
		p.i++
		return true
	}
	return false
}

func (p *parser) op(o string) bool {
	if t := p.peek(); t.kind == kOp && t.text == o {
		p.i++
		return true
	}
	return false
}

func describe(t token) string {
	if t.kind == kEOF {
		return "the end of the query"
	}
	return fmt.Sprintf("%q at position %d", t.text, t.pos)
}

func (p *parser) query() (*Query, error) {
	if !p.keyword("SELECT") {
		return nil, fmt.Errorf("query: want SELECT at the start, got %s", describe(p.peek()))
	}
	if t := p.peek(); t.kind == kIdent && strings.EqualFold(t.text, "TOP") {
		return nil, unsupported("SELECT TOP")
	}
	if !p.op("*") {
		t := p.peek()
		return nil, unsupported("the projection %s (only SELECT * is)", describe(t))
	}
	if !p.keyword("FROM") {
		return nil, fmt.Errorf("query: want FROM after SELECT *, got %s", describe(p.peek()))
	}
	q := &Query{}
	switch t := p.next(); {
	case t.kind == kIdent && strings.EqualFold(t.text, "devices"):
	case t.kind == kIdent && strings.EqualFold(t.text, "devices.modules"):
		q.Modules = true
	case t.kind == kIdent && strings.EqualFold(t.text, "devices.jobs"):
		return nil, unsupported("FROM devices.jobs")
	default:
		return nil, unsupported("FROM %s (the collections are devices and devices.modules)", describe(t))
	}
	if p.keyword("WHERE") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		q.where = e
	}
	if t := p.peek(); t.kind != kEOF {
		if t.kind == kIdent && (strings.EqualFold(t.text, "GROUP") || strings.EqualFold(t.text, "ORDER")) {
			return nil, unsupported("%s BY", strings.ToUpper(t.text))
		}
		return nil, fmt.Errorf("query: unexpected %s", describe(t))
	}
	return q, nil
}

func (p *parser) or() (expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = orExpr{l, r}
	}
	return l, nil
}

func (p *parser) and() (expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.keyword("AND") {
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = andExpr{l, r}
	}
	return l, nil
}

func (p *parser) not() (expr, error) {
	if p.keyword("NOT") {
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return notExpr{e}, nil
	}
	return p.primary()
}

func (p *parser) primary() (expr, error) {
	if p.op("(") {
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.op(")") {
			return nil, fmt.Errorf("query: want ) , got %s", describe(p.peek()))
		}
		return e, nil
	}
	t := p.next()
	if t.kind != kIdent {
		return nil, fmt.Errorf("query: want a property name, got %s", describe(t))
	}
	if p.op("(") { // a function
		if !strings.EqualFold(t.text, "IS_DEFINED") {
			return nil, unsupported("the function %s", strings.ToUpper(t.text))
		}
		a := p.next()
		if a.kind != kIdent || !p.op(")") {
			return nil, fmt.Errorf("query: IS_DEFINED takes one property name, at position %d", t.pos)
		}
		return definedExpr{path(a.text)}, nil
	}
	if isKeyword(t.text) {
		return nil, fmt.Errorf("query: want a property name, got the keyword %s", describe(t))
	}
	lhs := path(t.text)
	neg := p.keyword("NOT")
	if p.keyword("IN") {
		if !p.op("[") {
			return nil, fmt.Errorf("query: want [ after IN, got %s", describe(p.peek()))
		}
		var set []any
		for {
			v, err := p.constant()
			if err != nil {
				return nil, err
			}
			set = append(set, v)
			if p.op("]") {
				break
			}
			if !p.op(",") {
				return nil, fmt.Errorf("query: want , or ] in the IN list, got %s", describe(p.peek()))
			}
		}
		var e expr = inExpr{lhs, set}
		if neg {
			e = notExpr{e}
		}
		return e, nil
	}
	if neg {
		return nil, fmt.Errorf("query: want IN after NOT, got %s", describe(p.peek()))
	}
	o := p.next()
	switch o.text {
	case "=", "!=", "<>", "<", "<=", ">", ">=":
	default:
		return nil, fmt.Errorf("query: want a comparison (= != <> < <= > >=) after %q, got %s", t.text, describe(o))
	}
	if o.kind != kOp {
		return nil, fmt.Errorf("query: want a comparison after %q, got %s", t.text, describe(o))
	}
	if n := p.peek(); n.kind == kIdent && !isConstantWord(n.text) {
		return nil, unsupported("comparing two properties (%s %s %s)", t.text, o.text, n.text)
	}
	v, err := p.constant()
	if err != nil {
		return nil, err
	}
	return cmpExpr{lhs, o.text, v}, nil
}

func isKeyword(s string) bool {
	for _, k := range []string{"AND", "OR", "NOT", "IN", "SELECT", "FROM", "WHERE"} {
		if strings.EqualFold(s, k) {
			return true
		}
	}
	return false
}

func isConstantWord(s string) bool {
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false") || strings.EqualFold(s, "null")
}

func (p *parser) constant() (any, error) {
	t := p.next()
	switch t.kind {
	case kString:
		return t.text, nil
	case kNumber:
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("query: bad number %s", describe(t))
		}
		return f, nil
	case kIdent:
		switch strings.ToLower(t.text) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null":
			return nil, nil
		}
	}
	return nil, fmt.Errorf("query: want a constant ('text', a number, true, false or null), got %s", describe(t))
}

// --- evaluation (three-valued: a missing property is undefined) ---

type tri int

const (
	tUndefined tri = iota
	tFalse
	tTrue
)

func triOf(b bool) tri {
	if b {
		return tTrue
	}
	return tFalse
}

type expr interface{ eval(doc map[string]any) tri }

type path string

// lookup follows the dotted path through nested objects. A leading "devices." or
// "devices.modules." names the collection, as in the docs' "devices.deviceId = 'x'".
func (p path) lookup(doc map[string]any) (any, bool) {
	s := string(p)
	if rest, ok := strings.CutPrefix(s, "devices.modules."); ok {
		s = rest
	} else if rest, ok := strings.CutPrefix(s, "devices."); ok {
		s = rest
	}
	var cur any = doc
	for _, seg := range strings.Split(s, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

type cmpExpr struct {
	p  path
	op string
	v  any
}

func (e cmpExpr) eval(doc map[string]any) tri {
	got, ok := e.p.lookup(doc)
	if !ok {
		return tUndefined
	}
	c, ok := compare(got, e.v)
	if !ok {
		return tUndefined // different kinds, or not ordered
	}
	switch e.op {
	case "=":
		return triOf(c == 0)
	case "!=", "<>":
		return triOf(c != 0)
	}
	if isBoolOrNull(got) {
		return tUndefined // only = and != order booleans and null
	}
	switch e.op {
	case "<":
		return triOf(c < 0)
	case "<=":
		return triOf(c <= 0)
	case ">":
		return triOf(c > 0)
	default:
		return triOf(c >= 0)
	}
}

func isBoolOrNull(v any) bool {
	switch v.(type) {
	case bool, nil:
		return true
	}
	return false
}

// compare orders two JSON values of the same kind.
func compare(a, b any) (int, bool) {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return strings.Compare(a, b), ok
	case float64:
		b, ok := b.(float64)
		switch {
		case !ok:
			return 0, false
		case a < b:
			return -1, true
		case a > b:
			return 1, true
		}
		return 0, true
	case bool:
		b, ok := b.(bool)
		if !ok {
			return 0, false
		}
		if a == b {
			return 0, true
		}
		return 1, true
	case nil:
		if b == nil {
			return 0, true
		}
		return 1, true
	}
	return 0, false // objects and arrays do not compare
}

type inExpr struct {
	p   path
	set []any
}

func (e inExpr) eval(doc map[string]any) tri {
	got, ok := e.p.lookup(doc)
	if !ok {
		return tUndefined
	}
	for _, v := range e.set {
		if c, ok := compare(got, v); ok && c == 0 {
			return tTrue
		}
	}
	return tFalse
}

type definedExpr struct{ p path }

func (e definedExpr) eval(doc map[string]any) tri {
	_, ok := e.p.lookup(doc)
	return triOf(ok)
}

type andExpr struct{ l, r expr }

func (e andExpr) eval(doc map[string]any) tri {
	l, r := e.l.eval(doc), e.r.eval(doc)
	switch {
	case l == tFalse || r == tFalse:
		return tFalse
	case l == tTrue && r == tTrue:
		return tTrue
	}
	return tUndefined
}

type orExpr struct{ l, r expr }

func (e orExpr) eval(doc map[string]any) tri {
	l, r := e.l.eval(doc), e.r.eval(doc)
	switch {
	case l == tTrue || r == tTrue:
		return tTrue
	case l == tFalse && r == tFalse:
		return tFalse
	}
	return tUndefined
}

type notExpr struct{ e expr }

func (e notExpr) eval(doc map[string]any) tri {
	switch e.e.eval(doc) {
	case tTrue:
		return tFalse
	case tFalse:
		return tTrue
	}
	return tUndefined
}
