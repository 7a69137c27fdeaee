package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// A Postman collection (schema v2.1.0), generated from the OpenAPI
// document: one folder per tag, one request per operation, the bearer
// credential and the base URL as collection variables.
type (
	postmanCollection struct {
		Info     postmanInfo   `json:"info"`
		Auth     *postmanAuth  `json:"auth,omitempty"`
		Variable []postmanVar  `json:"variable"`
		Item     []postmanItem `json:"item"`
	}
	postmanInfo struct {
		Name        string `json:"name"`
		Description string `json:"description"`
		Schema      string `json:"schema"`
	}
	postmanAuth struct {
		Type   string       `json:"type"`
		Bearer []postmanVar `json:"bearer,omitempty"`
	}
	postmanVar struct {
		Key         string `json:"key"`
		Value       string `json:"value"`
		Type        string `json:"type,omitempty"`
		Description string `json:"description,omitempty"`
		Disabled    bool   `json:"disabled,omitempty"`
	}
	postmanItem struct {
		Name    string          `json:"name"`
		Item    []postmanItem   `json:"item,omitempty"`
		Request *postmanRequest `json:"request,omitempty"`
	}
	postmanRequest struct {
		Method      string       `json:"method"`
		Description string       `json:"description,omitempty"`
		Auth        *postmanAuth `json:"auth,omitempty"`
		Header      []postmanVar `json:"header"`
		URL         postmanURL   `json:"url"`
		Body        *postmanBody `json:"body,omitempty"`
	}
	postmanURL struct {
		Raw      string       `json:"raw"`
		Host     []string     `json:"host"`
		Path     []string     `json:"path"`
		Query    []postmanVar `json:"query,omitempty"`
		Variable []postmanVar `json:"variable,omitempty"`
	}
	postmanBody struct {
		Mode       string         `json:"mode"`
		Raw        string         `json:"raw,omitempty"`
		URLEncoded []postmanVar   `json:"urlencoded,omitempty"`
		Options    map[string]any `json:"options,omitempty"`
	}
)

var methodOrder = []string{"get", "post", "put", "patch", "delete"}

// postman converts doc into a collection.
func postman(doc *openAPIDoc) *postmanCollection {
	c := &postmanCollection{
		Info: postmanInfo{Name: doc.Info.Title, Description: doc.Info.Description, Schema: "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
		Auth: &postmanAuth{Type: "bearer", Bearer: []postmanVar{{Key: "token", Value: "{{api_key}}", Type: "string"}}},
		Variable: []postmanVar{{Key: "baseUrl", Value: doc.Servers[0].URL, Type: "string"},
			{Key: "api_key", Value: "", Type: "string", Description: "An API key (gate_test_… for the sandbox) or an OAuth access token"}},
	}
	folders := map[string]*postmanItem{}
	for _, t := range doc.Tags {
		c.Item = append(c.Item, postmanItem{Name: t.Name})
	}
	for i := range c.Item {
		folders[c.Item[i].Name] = &c.Item[i]
	}
	doc.operations(func(p, m string, op *openAPIOperation) {
		req := &postmanRequest{Method: strings.ToUpper(m), Description: op.Description, Header: []postmanVar{{Key: "Accept", Value: "application/json"}}}
		if op.Security != nil && len(*op.Security) == 0 {
			req.Auth = &postmanAuth{Type: "noauth"}
		}
		segs := []string{}
		for _, s := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			if name, ok := strings.CutPrefix(s, "{"); ok {
				name = strings.TrimSuffix(name, "}")
				req.URL.Variable = append(req.URL.Variable, postmanVar{Key: name, Value: "", Description: "A UUID"})
				s = ":" + name
			}
			segs = append(segs, s)
		}
		for _, prm := range op.Parameters {
			if prm.In == "query" {
				req.URL.Query = append(req.URL.Query, postmanVar{Key: prm.Name, Value: "", Description: prm.Description, Disabled: true})
			}
		}
		req.URL.Host, req.URL.Path = []string{"{{baseUrl}}"}, segs
		req.URL.Raw = "{{baseUrl}}/" + strings.Join(segs, "/")
		if rb := op.RequestBody; rb != nil {
			if mt, ok := rb.Content["application/json"]; ok {
				raw, _ := json.MarshalIndent(mt.Example, "", "  ")
				req.Header = append(req.Header, postmanVar{Key: "Content-Type", Value: "application/json"})
				req.Body = &postmanBody{Mode: "raw", Raw: string(raw), Options: map[string]any{"raw": map[string]string{"language": "json"}}}
			} else if mt, ok := rb.Content["application/x-www-form-urlencoded"]; ok {
				props, _ := mt.Schema["properties"].(schema)
				keys := make([]string, 0, len(props))
				for k := range props {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				req.Body = &postmanBody{Mode: "urlencoded"}
				for _, k := range keys {
					req.Body.URLEncoded = append(req.Body.URLEncoded, postmanVar{Key: k, Value: "", Type: "text", Disabled: !slices.Contains(requiredOf(mt.Schema), k)})
				}
			}
		}
		tag := op.Tags[0]
		folders[tag].Item = append(folders[tag].Item, postmanItem{Name: op.Summary, Request: req})
	})
	return c
}

func requiredOf(s schema) []string {
	r, _ := s["required"].([]string)
	return r
}

func postmanHandler(doc *openAPIDoc) http.Handler {
	body, err := json.MarshalIndent(postman(doc), "", "  ")
	if err != nil {
		panic(err) // plain data: a programming error
	}
	return staticJSON(body)
}
