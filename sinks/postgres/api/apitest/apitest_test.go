package apitest_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sensorhub/sensorhub/sinks/postgres/api/apitest"
)

// TestCheckRejectsWhatTheDocumentForbids makes sure the validator can
// fail: answers that break the document in several ways.
func TestCheckRejectsWhatTheDocumentForbids(t *testing.T) {
	t.Parallel()
	v := apitest.NewValidator(t)
	cases := []struct {
		name, path, contentType, body string
		status                        int
		ok                            bool
	}{
		{"ValidEmptyList", "/api/v1/stations", "application/json", `{"items":[],"next_cursor":null}`, 200, true},
		{"UnknownField", "/api/v1/stations", "application/json", `{"items":[],"next_cursor":null,"extra":1}`, 200, false},
		{"MissingCursor", "/api/v1/readings?station=a&sensor=b", "application/json", `{"items":[]}`, 200, false},
		{"TimeNotUTC", "/api/v1/readings?station=a&sensor=b", "application/json",
			`{"items":[{"station":"a","sensor":"b","ts":"2024-12-01T12:00:00+01:00","value":1,"unit":"Cel","qc_flag":2,"qc_tests":[],"derived":false}],"next_cursor":null}`, 200, false},
		{"BadQCFlag", "/api/v1/readings?station=a&sensor=b", "application/json",
			`{"items":[{"station":"a","sensor":"b","ts":"2024-12-01T12:00:00Z","value":1,"unit":"Cel","qc_flag":7,"qc_tests":[],"derived":false}],"next_cursor":null}`, 200, false},
		{"UndocumentedStatus", "/api/v1/stations", "application/problem+json", `{"type":"about:blank","title":"Teapot","status":418,"detail":"x"}`, 418, false},
		{"ProblemAsPlainText", "/api/v1/nope", "text/plain", `404 page not found`, 404, false},
		{"ValidProblem", "/api/v1/stations/x", "application/problem+json", `{"type":"about:blank","title":"Not Found","status":404,"detail":"no station"}`, 404, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, c.path, nil)
			resp := &http.Response{StatusCode: c.status, Header: http.Header{"Content-Type": {c.contentType}}}
			err := v.Check(req, resp, []byte(c.body))
			if (err == nil) != c.ok {
				t.Errorf("Check: %v, want ok=%v", err, c.ok)
			}
		})
	}
}
