// Package apitest checks HTTP answers of sensorhub's read API against its
// OpenAPI 3.1 document (api.OpenAPI) with kin-openapi, so that every test
// of the API, in process or against the real binary, holds the code to
// the document:
//
//	v := apitest.NewValidator(t)
//	resp, body := v.Get(t, srv.URL+"/api/v1/stations", nil)
//	// resp's status, headers and body are as the document says
package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/sensorhub/sensorhub/sinks/postgres/api"
)

// Validator validates requests and answers against api.OpenAPI.
type Validator struct {
	router routers.Router
	// Token, when set, is sent as the bearer token by Get.
	Token string
}

// NewValidator loads and validates api.OpenAPI; a document that is not
// valid OpenAPI 3.1 fails the test.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatalf("apitest: load the OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("apitest: the OpenAPI document is version %s, not 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("apitest: the OpenAPI document is invalid: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("apitest: route the OpenAPI document: %v", err)
	}
	return &Validator{router: router}
}

// options check the security scheme's presence only (the server checks
// the token) and fail on a status code the document does not list.
var options = &openapi3filter.Options{
	AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
	IncludeResponseStatus: true,
	MultiError:            true,
}

// ValidateRequest returns why the document calls req invalid, or nil (also
// for a path the document does not have).
func (v *Validator) ValidateRequest(req *http.Request) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		return nil
	}
	return openapi3filter.ValidateRequest(context.Background(),
		&openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options})
}

// ValidateResponse fails the test when resp, with body, is not an answer
// the document allows to req (see Check).
func (v *Validator) ValidateResponse(t testing.TB, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	if err := v.Check(req, resp, body); err != nil {
		t.Errorf("apitest: %s %s: %v\nbody: %.2000s", req.Method, req.URL, err, body)
	}
}

// Check returns why resp, with body, is not an answer the document allows
// to req, or nil. Answers of paths the document does not have, under
// /api/, must be problem documents.
func (v *Validator) Check(req *http.Request, resp *http.Response, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if strings.HasPrefix(req.URL.Path, "/api/") && resp.Header.Get("Content-Type") != "application/problem+json" {
			return fmt.Errorf("%d answered as %q, not a problem document", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		return nil
	}
	input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: options}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                options,
	})
	if err != nil {
		return fmt.Errorf("the answer (%d) breaks the OpenAPI document: %w", resp.StatusCode, err)
	}
	return nil
}

// Get sends GET url with header (may be nil) and Validator.Token, checks
// the answer against the document and returns it with its body read.
func (v *Validator) Get(t testing.TB, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if v.Token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+v.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("apitest: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("apitest: GET %s: read the body: %v", url, err)
	}
	v.ValidateResponse(t, req, resp, body)
	return resp, body
}
