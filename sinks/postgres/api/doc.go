// Package api serves sensorhub's read API and its status page over HTTP
// (DESIGN.md §15), reading PostgreSQL only:
//
//	GET /api/v1/stations          stations with status and latest readings
//	GET /api/v1/stations/{id}     one of them
//	GET /api/v1/readings          one sensor's readings, a keyset page at a time
//	GET /api/v1/aggregates        one sensor's rollup buckets (5m, 1h, 1d)
//	GET /api/v1/openapi.json      the OpenAPI 3.1 document of the above
//	GET /                         the status page, HTML that needs no script
//
// Lists answer JSON, or CSV when asked with Accept: text/csv; errors are
// RFC 9457 problem documents that name the parameter at fault. Every query
// is a fixed statement with bound parameters, on an index; the tests check
// their plans. docs/api.md is the user's guide.
//
// Give it a pool of a role that can only SELECT (deploy/postgres/roles.sql)
// and add its routes to a mux:
//
//	a, err := api.New(api.Config{DB: readPool, Token: token})
//	if err != nil {
//		return err
//	}
//	mux := http.NewServeMux()
//	a.Register(mux) // GET /api/v1/… and GET /
//	mux.Handle("GET /healthcheck", health) // other routes need no token
package api
