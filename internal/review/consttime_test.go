package review

import (
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// secretish matches expressions that hold secrets or values derived from
// them, which must be compared with crypto/subtle or hmac.Equal.
var secretish = regexp.MustCompile(`(?i)(secret|password|passwd|hash|\bmac\b|mac\(|signature|\bsig\b|digest|csrf|verifier|challenge|cookie)`)

// allowed are comparisons of secret-looking expressions that are not
// secret comparisons, each with the reason.
var allowed = map[string]string{
	"oauth/provider.go: g == GrantPassword":                         "a grant type name, not a password",
	`oauth/token.go: r.PostForm.Get("grant_type") == GrantPassword`: "a grant type name, not a password",
}

// constantTime are the functions that compare secrets; each must call
// crypto/subtle or hmac.Equal.
var constantTime = map[string][]string{
	"oauth/secret.go":      {"Compare", "checkArgon2id"},
	"oauth/authorize.go":   {"validCSRF"},
	"webhook/signature.go": {"Verify"},
	"paginate/cursor.go":   {"Decode"},
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, parent, dir, "no go.mod above the test")
		dir = parent
	}
}

func text(fset *token.FileSet, n ast.Node) string {
	var b strings.Builder
	_ = printer.Fprint(&b, fset, n)
	return b.String()
}

// harmless reports whether e cannot carry a secret: a literal, nil, a
// length, or an error value.
func harmless(fset *token.FileSet, e ast.Expr) bool {
	switch v := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return v.Name == "nil" || v.Name == "true" || v.Name == "false"
	case *ast.CallExpr:
		if id, ok := v.Fun.(*ast.Ident); ok && (id.Name == "len" || id.Name == "cap") {
			return true
		}
	}
	return strings.HasPrefix(text(fset, e), "Err") || strings.Contains(text(fset, e), ".Err")
}

// TestSecretComparisonsAreConstantTime reads every non-test Go file of the
// module and fails on any ==, !=, bytes.Equal, strings.EqualFold or
// reflect.DeepEqual whose operand looks like a secret (a hash, MAC,
// signature, password, CSRF token, PKCE verifier …), and on any of the
// comparison functions above that no longer calls crypto/subtle or
// hmac.Equal.
func TestSecretComparisonsAreConstantTime(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var findings []string
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == "bench" || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		report := func(n ast.Node, what string) {
			key := filepath.ToSlash(rel) + ": " + what
			if _, ok := allowed[key]; !ok {
				findings = append(findings, key+" ("+fset.Position(n.Pos()).String()+")")
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch v := n.(type) {
			case *ast.BinaryExpr:
				if v.Op != token.EQL && v.Op != token.NEQ {
					return true
				}
				if harmless(fset, v.X) || harmless(fset, v.Y) {
					return true
				}
				if secretish.MatchString(text(fset, v.X)) || secretish.MatchString(text(fset, v.Y)) {
					report(v, text(fset, v))
				}
			case *ast.CallExpr:
				switch fn := text(fset, v.Fun); fn {
				case "bytes.Equal", "strings.EqualFold", "reflect.DeepEqual", "strings.Compare", "bytes.Compare":
					for _, a := range v.Args {
						if secretish.MatchString(text(fset, a)) {
							report(v, text(fset, v))
							break
						}
					}
				}
			}
			return true
		})
		for _, name := range constantTime[filepath.ToSlash(rel)] {
			for _, decl := range f.Decls {
				fd, ok := decl.(*ast.FuncDecl)
				if !ok || fd.Name.Name != name {
					continue
				}
				body := text(fset, fd.Body)
				assert.True(t, strings.Contains(body, "subtle.ConstantTimeCompare") || strings.Contains(body, "hmac.Equal") || strings.Contains(body, "CheckPassword("),
					"%s: %s compares a secret but calls neither subtle.ConstantTimeCompare nor hmac.Equal", rel, name)
				seen[filepath.ToSlash(rel)+"."+name] = true
			}
		}
		return nil
	})
	require.NoError(t, err)
	assert.Empty(t, findings, "secret-looking values compared in variable time; use crypto/subtle.ConstantTimeCompare or hmac.Equal, or add the line to allowed with the reason")
	for file, names := range constantTime {
		for _, n := range names {
			assert.True(t, seen[file+"."+n], "%s.%s no longer exists: update the list", file, n)
		}
	}
}
