# The action's image: a static binary and CA certificates, nothing else.
#
# Releases build the binary in the `build` stage. The tests build it on the
# host and pass it in the build context with --build-arg BINARY=prebuilt,
# so that they check this same final stage without a Go image.
ARG BINARY=build

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dagster-branch-deploy . \
 && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM scratch AS prebuilt
COPY dagster-branch-deploy ca-certificates.crt /out/

FROM ${BINARY} AS binary

FROM scratch
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary /out/dagster-branch-deploy /dagster-branch-deploy
# No USER and no WORKDIR: GitHub runs Docker actions as root, with the
# workspace mounted as the working directory.
ENTRYPOINT ["/dagster-branch-deploy"]
