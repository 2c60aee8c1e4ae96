# The edge's authorization decision, asked by Envoy (ext-authz gRPC) for every public request.
#
# Deny by default: a request is allowed only when its host and path fall under a declared public
# route (data.soma.edge.routes, generated from the stack settings by components/mesh/edge/routes.py),
# its method is one the route serves, the token carries every scope that method needs, and, where
# the route names a tenant (header or path segment), the token's tenant claim equals it.
#
# The token is the bearer token of the Authorization header; Envoy's jwt_authn filter (ordered
# before ext_authz by the EnvoyProxy's filterOrder) has already checked its signature, issuer,
# audience and expiry, so its claims are read here without a second verification.
package soma.edge.authz

import rego.v1

default allow := false

allow if {
	route
	method_allowed
	scopes_granted
	tenant_matches
}

request := input.attributes.request.http

# host without a port, as Envoy passes :authority
host := lower(split(request.host, ":")[0])

# path without its query string
path := split(request.path, "?")[0]

bearer := token if {
	header := request.headers.authorization
	startswith(header, "Bearer ")
	token := substring(header, 7, -1)
}

claims := payload if {
	[_, payload, _] := io.jwt.decode(bearer)
}

# The one route the request falls under: host equal, path equal to the prefix or below it.
matching contains r if {
	some r in data.soma.edge.routes
	r.host == host
	under_prefix(path, r.path_prefix)
}

route := r if {
	count(matching) == 1
	some r in matching
}

under_prefix(p, prefix) if p == prefix

under_prefix(p, prefix) if startswith(p, concat("", [trim_suffix(prefix, "/"), "/"]))

method_allowed if route.methods[request.method]

token_scopes contains s if {
	some s in split(claims.scope, " ")
}

token_scopes contains s if {
	some s in claims.scp
}

scopes_granted if {
	needed := route.methods[request.method]
	count(needed) > 0
	every s in needed {
		s in token_scopes
	}
}

tenant_matches if {
	route.tenant_header == ""
	route.tenant_path_segment == 0
	claims
}

tenant_matches if {
	route.tenant_header != ""
	wanted := request.headers[route.tenant_header]
	wanted != ""
	claims[route.tenant_claim] == wanted
}

tenant_matches if {
	route.tenant_path_segment > 0
	rest := trim_prefix(path, trim_suffix(route.path_prefix, "/"))
	segments := [s | some s in split(trim_prefix(rest, "/"), "/")]
	wanted := segments[route.tenant_path_segment - 1]
	wanted != ""
	claims[route.tenant_claim] == wanted
}

# Why a request was refused, for the decision log (the first reason that applies).
reason := "allowed" if allow

else := "no public route for this host and path" if not route

else := "method not served by this route" if not method_allowed

else := "no valid bearer token" if not claims

else := "token lacks a scope this method needs" if not scopes_granted

else := "token tenant does not match the request's tenant" if not tenant_matches

# The answer Envoy acts on: allowed or 403, with the reason in a response header for the access log.
result := {
	"allowed": allow,
	"headers": {"x-soma-authz-route": route_name},
	"http_status": 403,
	"body": "",
	"response_headers_to_add": {"x-soma-authz-reason": reason},
} if not allow

result := {"allowed": true, "headers": {"x-soma-authz-route": route_name}} if allow

route_name := route.name if {
	route
} else := ""
