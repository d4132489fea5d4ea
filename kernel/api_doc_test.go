package kernel

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// registeredRoutes reads the patterns the package's non-test sources
// register on an http.ServeMux (x.HandleFunc("METHOD /path", ...) and
// x.Handle(...) with a literal pattern; a mux is named mux), normalized by
// normRoute. The catch-all "/" is no route.
func registeredRoutes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{} // normalized -> as registered
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				// Other Handle methods (the transport's stream kinds)
				// take no pattern; a mux must be given one it can read.
				if x, isIdent := sel.X.(*ast.Ident); isIdent && x.Name == "mux" {
					t.Errorf("%s: a route registered with a pattern that is not a literal: this test cannot check it is documented", fset.Position(call.Pos()))
				}
				return true
			}
			p, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			if p == "/" {
				return true
			}
			method, path, ok := strings.Cut(p, " ")
			if !ok {
				t.Errorf("%s: route %q names no method", fset.Position(call.Pos()), p)
				return true
			}
			routes[normRoute(method, path)] = p
			return true
		})
	}
	return routes
}

var (
	routeParam  = regexp.MustCompile(`\{[^}]*\}`)
	codeSpan    = regexp.MustCompile("`([^`]*)`")
	routeMethod = regexp.MustCompile(`^(GET|HEAD|POST|PUT|PATCH|DELETE) (/\S*)$`)
)

// normRoute is "METHOD /path" with each {parameter} as {} and without a
// query (documents write {address} where the mux has {addr}).
func normRoute(method, path string) string {
	if i := strings.IndexAny(path, "?["); i >= 0 {
		path = path[:i]
	}
	return method + " " + routeParam.ReplaceAllString(path, "{}")
}

// documentedRoutes reads the routes the table of docs/api.md lists: in
// the first cell of each row, code spans "METHOD /path" and "/path"
// (which takes the method before it), and "/suffix" after "(+" (added to
// each path of the cell: `/v1/rome/offers`, `/v1/rome/leases` (+ `/{id}`)).
func documentedRoutes(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := firstCell(line)
		var method string
		var paths []string
		for _, m := range codeSpan.FindAllStringSubmatchIndex(cell, -1) {
			span := cell[m[2]:m[3]]
			switch mm := routeMethod.FindStringSubmatch(span); {
			case mm != nil:
				method = mm[1]
				paths = append(paths, normRoute(method, mm[2]))
			case strings.HasPrefix(span, "/v1/") || span == "/metrics":
				if method == "" {
					t.Errorf("docs/api.md: %s: a path before any method", span)
					continue
				}
				paths = append(paths, normRoute(method, span))
			case strings.HasPrefix(span, "/") && strings.HasSuffix(strings.TrimSpace(cell[:m[0]]), "(+"):
				for _, p := range slices.Clone(paths) {
					m, path, _ := strings.Cut(p, " ")
					paths = append(paths, normRoute(m, path+span))
				}
			}
		}
		for _, p := range paths {
			routes[p] = true
		}
	}
	return routes
}

// firstCell is the first cell of a Markdown table row ("\|" is a pipe
// inside it).
func firstCell(row string) string {
	row = strings.TrimPrefix(row, "|")
	for i := 0; i < len(row); i++ {
		switch row[i] {
		case '\\':
			i++
		case '|':
			return row[:i]
		}
	}
	return row
}

// TestAPIRoutesDocumented: every route the node's HTTP API registers is
// listed in docs/api.md (a new route without its entry fails here).
func TestAPIRoutesDocumented(t *testing.T) {
	registered := registeredRoutes(t)
	if len(registered) < 50 {
		t.Fatalf("found %d registered routes: the source scan is broken", len(registered))
	}
	documented := documentedRoutes(t)
	var missing []string
	for norm, p := range registered {
		if !documented[norm] {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("routes registered but not in docs/api.md:\n  %s", strings.Join(missing, "\n  "))
	}
}

// TestDocumentedRoutesParse: the docs/api.md reader understands the
// table's ways of listing several routes in one row.
func TestDocumentedRoutesParse(t *testing.T) {
	d := documentedRoutes(t)
	for _, r := range []string{
		"GET /v1/blocks/{}", "POST /v1/txs", "PUT /v1/blobs/{}", "GET /v1/rome/requests",
		"GET /v1/rome/leases/{}", "GET /v1/rome/offers/{}", "GET /v1/certs", "GET /metrics",
	} {
		if !d[r] {
			t.Errorf("docs/api.md as read lacks %s", r)
		}
	}
	if d["GET /{id}"] || d["GET /v1/rome/offers/{}/{}"] {
		t.Error("a suffix was read as a route of its own or added twice")
	}
	if got := firstCell("| `GET /v1/blocks/{height\\|latest}` | block |"); got != " `GET /v1/blocks/{height\\|latest}` " {
		t.Errorf("first cell %q", got)
	}
}
