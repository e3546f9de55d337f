# The action's image: a static binary and CA certificates, nothing else.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /dagster-branch-deploy .

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /dagster-branch-deploy /dagster-branch-deploy
# No USER and no WORKDIR: GitHub runs Docker actions as root in the workspace.
ENTRYPOINT ["/dagster-branch-deploy"]
