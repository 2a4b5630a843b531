# syntax=docker/dockerfile:1
# Build: the widget (npm + esbuild + Go wasm), then a static otrdesk.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY web/package.json web/package-lock.json web/
RUN cd web && npm ci --no-audit --no-fund
COPY . .
RUN cd web && node build.mjs
RUN CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /out/otrdesk ./cmd/otrdesk

# Run: nothing but the binary, as an unprivileged user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/otrdesk /usr/local/bin/otrdesk
COPY config.example.toml /etc/otrdesk/otrdesk.example.toml
VOLUME ["/var/lib/otrdesk"]
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["otrdesk"]
CMD ["serve", "-config", "/etc/otrdesk/otrdesk.toml"]
HEALTHCHECK --interval=30s --timeout=5s CMD ["otrdesk", "health", "-config", "/etc/otrdesk/otrdesk.toml"]
