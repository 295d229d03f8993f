// Package servingcert serves the gRPC port's TLS certificate from files that may be replaced while the
// server runs (cert-manager renewing a Secret, which Kubernetes swaps in through a symlink), so a rotated
// certificate is served to the next handshake without a restart.
package servingcert
