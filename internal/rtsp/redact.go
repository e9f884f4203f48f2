package rtsp

import "regexp"

// queryCredential matches a query parameter that carries a credential
// (some cameras take ?user=admin&password=... instead of user
// information): a name containing pass, pw, token, key, auth or secret,
// in any case, and its value up to the next separator.
var queryCredential = regexp.MustCompile(`(?i)([?&;][^=&;#\s"'?]*(?:pass|pw|token|key|auth|secret)[^=&;#\s"'?]*=)[^&;#\s"']*`)

// redactQuery replaces the values of credential query parameters in s (a
// URL, or a message holding URLs) with "xxxxx". No I/O.
func redactQuery(s string) string {
	return queryCredential.ReplaceAllString(s, "${1}xxxxx")
}
