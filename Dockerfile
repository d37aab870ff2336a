# parapet: multi-stage build of a static binary, run as non-root.
#
#   docker build -t parapet .
#   docker run --rm --network host parapet            # the embedded lab default (loopback only)
#   docker run --rm --network host -v $PWD/etc:/etc/parapet:ro -v parapet-state:/var/lib/parapet \
#       parapet run -c /etc/parapet/parapet.hcl
#
# With -c, relative paths and the default state_dir resolve against the config
# file's directory (/etc/parapet/parapet-state, read-only above): set
# state_dir = "/var/lib/parapet" in parapet.hcl, so the log and keys go to the
# volume.
#
# SIP over UDP/TCP/TLS and a wide RTP port range are easiest with host
# networking; with port publishing, publish every media port of media.ports.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/parapet ./cmd/parapet \
 && mkdir -p /out/state/parapet-state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parapet /usr/local/bin/parapet
# The working directory holds parapet-state/ (lab certificates, the
# pseudonymisation and signing keys and the compliance log) for the lab
# default; with -c, state goes where parapet.hcl's state_dir says.
COPY --from=build --chown=65532:65532 /out/state /var/lib/parapet
WORKDIR /var/lib/parapet
USER 65532:65532
EXPOSE 5060/udp 5060/tcp 5061/tcp 9090/tcp
ENTRYPOINT ["/usr/local/bin/parapet"]
CMD ["run"]
