# Two images around one static binary:
#
#   action (the last stage, so the default target): the GitHub Action's image,
#     FROM scratch with the binary and CA certificates, nothing else.
#   gitlab: a GitLab CI job image. GitLab runs a job's `image:` with a shell
#     (`sh -c`, the job script on stdin), so it adds a static busybox (sh and
#     the usual applets), puts the binary on PATH as
#     /usr/local/bin/dagster-branch-deploy and clears the entrypoint.
#
# Build arguments:
#   VERSION  the version the binary reports (--version); default "dev".
#   BINARY   `build` (default): compile the binary in the golang stage;
#            `prebuilt`: take ./dagster-branch-deploy and ./ca-certificates.crt
#            from the build context (the tests build the binary on the host, so
#            they check these same final stages without a Go image).
#   BUSYBOX  `busybox-image` (default): the static busybox of the official
#            busybox (musl) image; `busybox-prebuilt`: ./busybox from the build
#            context (the tests use Debian's busybox-static). Only the gitlab
#            target reads it.
#
#   docker build --build-arg VERSION=v1.2.3 .                  # the action
#   docker build --build-arg VERSION=v1.2.3 --target gitlab .  # the GitLab job image
ARG BINARY=build
ARG BUSYBOX=busybox-image

# Cross-compiled on the build machine's platform for the target's (no
# emulation of the Go toolchain in multi-platform builds).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags="-s -w -X github.com/dagster-branch-deploy/dagster-branch-deploy/internal/cli.Version=${VERSION}" \
      -o /out/dagster-branch-deploy . \
 && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS prebuilt
COPY dagster-branch-deploy ca-certificates.crt /out/

FROM ${BINARY} AS binary

FROM busybox:1.37.0-musl AS busybox-image

FROM scratch AS busybox-prebuilt
COPY busybox /bin/busybox

FROM ${BUSYBOX} AS busybox

FROM scratch AS gitlab
COPY --from=busybox /bin/busybox /bin/busybox
# Links for sh and the other applets (the job script's mkdir, cat, ...), and a
# /tmp. Exec form: there is no /bin/sh before this step.
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && /bin/busybox mkdir -p -m 1777 /tmp"]
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/dagster-branch-deploy /usr/local/bin/dagster-branch-deploy
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin
# GitLab runs the job script with `sh -c` as the command; an entrypoint would
# swallow it.
ENTRYPOINT []
CMD ["/bin/sh"]

FROM scratch AS action
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/dagster-branch-deploy /dagster-branch-deploy
# No USER and no WORKDIR: GitHub runs Docker actions as root, with the
# workspace mounted as the working directory.
ENTRYPOINT ["/dagster-branch-deploy"]
