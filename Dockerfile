# syntax=docker/dockerfile:1

# Build on the builder's own platform and cross-compile (CGO is off), so multi-arch images need no emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
# Stamped into --version, the startup log and resume_trigger_build_info (make image passes them).
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w \
      -X github.com/argocontroller/resume-trigger/internal/version.Version=$VERSION \
      -X github.com/argocontroller/resume-trigger/internal/version.Commit=$COMMIT" \
      -o /out/resume-trigger ./cmd/resume-trigger

# No shell, no package manager, no CA bundle (the binary carries Mozilla's roots): the static binary and the
# nonroot user's passwd/group entries. make release builds the same image without Docker (tests/cmd/release,
# TestDockerfileAgrees keeps the two alike).
FROM scratch
ARG VERSION=dev
ARG COMMIT=unknown
ARG SOURCE=https://github.com/argocontroller/resume-trigger
LABEL org.opencontainers.image.title="resume-trigger" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$COMMIT" \
      org.opencontainers.image.source="$SOURCE" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY hack/image/ /
COPY --from=build /out/resume-trigger /resume-trigger
USER 65532:65532
# 9000: gRPC (triggers.Trigger and grpc.health.v1); 8080: /metrics, /healthz, /readyz.
EXPOSE 9000 8080
ENTRYPOINT ["/resume-trigger"]
