// Package inspect answers a person's questions about debug pauses: which containers are paused now (the
// rule `kubectl resume list` shows) and what the server's lookup would do with a request (the verdicts of
// `kubectl resume why`). It only reads, with the clients it is given: the plugin passes the user's
// kubeconfig, the UI the user's bearer token; never the server's own ServiceAccount.
package inspect
