package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// codeSample is one entry of an operation's x-codeSamples, the OpenAPI
// extension that Redoc and other renderers show beside the operation; the
// explorer at /docs shows them too.
type codeSample struct {
	Lang   string `json:"lang"`
	Label  string `json:"label"`
	Source string `json:"source"`
}

// The environment variables the samples read: the credential, as the
// seed asks ("store API keys in environment variables"), and each path
// parameter by its name in capitals ({id} is $ID).
const sampleKeyEnv = "GATEHOUSE_API_KEY"

// codeSamples returns a request to method base+path with the JSON body
// (nil for none) as curl, JavaScript (fetch, Node 18+), Python (urllib)
// and Go (net/http): standard libraries only, so that each runs as it is
// printed. Each prints the response's status and body (curl its headers
// too: the X-RateLimit-* and X-Pagination-* ones).
func codeSamples(base, method, path string, body any) []codeSample {
	var js []byte
	if body != nil {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			panic(fmt.Sprintf("code samples of %s %s: %v", method, path, err)) // a programming error, caught by the tests
		}
		js = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	return []codeSample{
		{Lang: "Shell", Label: "curl", Source: curlSample(base, method, path, js)},
		{Lang: "JavaScript", Label: "JavaScript (fetch)", Source: fetchSample(base, method, path, js)},
		{Lang: "Python", Label: "Python (urllib)", Source: pythonSample(base, method, path, js)},
		{Lang: "Go", Label: "Go (net/http)", Source: goSample(base, method, path, js)},
	}
}

// urlParts splits base+path into its literal text and the names of its
// parameters' variables, alternately: "/v1/customers/{id}" → ["…/v1/customers/", "ID", ""].
func urlParts(base, path string) []string {
	parts := []string{base}
	for {
		open := strings.IndexByte(path, '{')
		end := strings.IndexByte(path, '}')
		if open < 0 || end < open {
			parts[len(parts)-1] += path
			return parts
		}
		parts[len(parts)-1] += path[:open]
		parts = append(parts, strings.ToUpper(path[open+1:end]), "")
		path = path[end+1:]
	}
}

// concat joins urlParts with sep (a +, spaced as the language's
// formatter spaces it), quoting literals with quote and reading variables
// with env.
func concat(parts []string, sep string, quote func(string) string, env func(string) string) string {
	var out []string
	for i, p := range parts {
		switch {
		case i%2 == 1:
			out = append(out, env(p))
		case p != "" || i == 0:
			out = append(out, quote(p))
		}
	}
	return strings.Join(out, sep)
}

// shellQuote quotes s for a POSIX shell: single quotes, each ' closed,
// escaped and reopened.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func curlSample(base, method, path string, body []byte) string {
	var b strings.Builder
	b.WriteString("curl -i")
	if method != "GET" && !(method == "POST" && body != nil) {
		b.WriteString(" -X " + method)
	}
	// In double quotes "$ID" expands and nothing else does: the URL's
	// literal text has no $, ` or \.
	b.WriteString(` "`)
	for i, p := range urlParts(base, path) {
		if i%2 == 1 {
			b.WriteString("${" + p + "}")
		} else {
			b.WriteString(p)
		}
	}
	b.WriteString(`" \` + "\n")
	b.WriteString(`  -H "Authorization: Bearer $` + sampleKeyEnv + `"`)
	if body != nil {
		b.WriteString(` \` + "\n" + `  -H "Content-Type: application/json" \` + "\n  -d " + shellQuote(string(body)))
	}
	return b.String()
}

// jsQuote quotes s as a JavaScript string literal: JSON's string syntax
// is a subset of it.
func jsQuote(s string) string {
	b, _ := json.Marshal(s) // a string always encodes
	return string(b)
}

func fetchSample(base, method, path string, body []byte) string {
	var b strings.Builder
	b.WriteString("// Node.js 18 or later, as an ES module (a .mjs file): it awaits at the top level.\n")
	fmt.Fprintf(&b, "const res = await fetch(%s, {\n", concat(urlParts(base, path), " + ", jsQuote, func(v string) string { return "process.env." + v }))
	fmt.Fprintf(&b, "  method: %s,\n", jsQuote(method))
	b.WriteString("  headers: {\n    Authorization: \"Bearer \" + process.env." + sampleKeyEnv + ",\n")
	if body != nil {
		b.WriteString("    \"Content-Type\": \"application/json\",\n  },\n")
		fmt.Fprintf(&b, "  body: JSON.stringify(%s),\n", body) // JSON is a JavaScript expression
	} else {
		b.WriteString("  },\n")
	}
	b.WriteString("});\nconsole.log(res.status, await res.text());")
	return b.String()
}

// goQuote quotes s as a Go (and Python 3) string literal: strconv.Quote's
// escapes (\", \\, \n, \xHH, \uHHHH, \UHHHHHHHH …) mean the same in both.
func goQuote(s string) string { return strconv.Quote(s) }

func pythonSample(base, method, path string, body []byte) string {
	var b strings.Builder
	b.WriteString("import os\nimport urllib.error\nimport urllib.request\n\n")
	b.WriteString("req = urllib.request.Request(\n")
	fmt.Fprintf(&b, "    %s,\n", concat(urlParts(base, path), " + ", goQuote, func(v string) string { return `os.environ["` + v + `"]` }))
	fmt.Fprintf(&b, "    method=%s,\n", goQuote(method))
	if body != nil {
		fmt.Fprintf(&b, "    data=%s.encode(),\n", goQuote(string(body)))
		b.WriteString(`    headers={"Authorization": "Bearer " + os.environ["` + sampleKeyEnv + `"], "Content-Type": "application/json"},` + "\n")
	} else {
		b.WriteString(`    headers={"Authorization": "Bearer " + os.environ["` + sampleKeyEnv + `"]},` + "\n")
	}
	b.WriteString(")\ntry:\n    res = urllib.request.urlopen(req)\nexcept urllib.error.HTTPError as err:  # 4xx and 5xx: the body is the error envelope\n    res = err\n")
	b.WriteString("print(res.status, res.read().decode())")
	return b.String()
}

func goSample(base, method, path string, body []byte) string {
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"fmt\"\n\t\"io\"\n\t\"net/http\"\n\t\"os\"\n")
	if body != nil {
		b.WriteString("\t\"strings\"\n")
	}
	b.WriteString(")\n\nfunc main() {\n")
	reader := "nil"
	if body != nil {
		fmt.Fprintf(&b, "\tbody := strings.NewReader(%s)\n", goQuote(string(body)))
		reader = "body"
	}
	fmt.Fprintf(&b, "\treq, err := http.NewRequest(%s, %s, %s)\n", goQuote(method),
		concat(urlParts(base, path), "+", goQuote, func(v string) string { return `os.Getenv("` + v + `")` }), reader)
	b.WriteString("\tif err != nil {\n\t\tpanic(err)\n\t}\n")
	b.WriteString("\treq.Header.Set(\"Authorization\", \"Bearer \"+os.Getenv(\"" + sampleKeyEnv + "\"))\n")
	if body != nil {
		b.WriteString("\treq.Header.Set(\"Content-Type\", \"application/json\")\n")
	}
	b.WriteString("\tres, err := http.DefaultClient.Do(req)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tdefer res.Body.Close()\n")
	b.WriteString("\tb, err := io.ReadAll(res.Body)\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\tfmt.Println(res.StatusCode, string(b))\n}\n")
	return b.String()
}
