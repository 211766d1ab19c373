# tusgate container image: the one binary that replaces tusd + hooks + nginx.
#
#   docker build -t tusgate:local .
#   docker run --rm -p 8080:8080 -v tusgate-assets:/srv/assets \
#       -e UPLOAD_SECRET=… -e SECURE_LINK_SECRET=… tusgate:local
#
# Any tusgate flag can be appended (`docker run … tusgate:local --max-size=1073741824`), and
# every setting also has an environment variable (`tusgate --help` lists both). Secrets come
# from UPLOAD_SECRET / SECURE_LINK_SECRET, or from files named by UPLOAD_SECRET_FILE /
# SECURE_LINK_SECRET_FILE (Docker or Compose secrets mounted under /run/secrets/).
#
# The build downloads crates and nothing else. docker-compose.yml next to this file runs it.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /build

# 1. Dependencies only, in their own layer: it is rebuilt when Cargo.toml or Cargo.lock change,
#    not on every source edit. Stub lib and bin targets let cargo compile every dependency now.
#    The workspace's other package (crates/bench, linked for `tusgate bench`) gets stubs too.
COPY Cargo.toml Cargo.lock ./
COPY crates/bench/Cargo.toml ./crates/bench/
# Cargo.toml declares benchmarks by name only; cargo refuses to read the manifest unless their
# files exist (`cargo build` does not compile them).
COPY benches/*.rs ./benches/
RUN mkdir -p src crates/bench/src \
    && echo 'fn main() {}' > src/main.rs \
    && echo '' > src/lib.rs \
    && echo 'fn main() {}' > crates/bench/src/main.rs \
    && echo '' > crates/bench/src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src crates/bench/src

# 2. The real source. COPY keeps the files' own modification times, which can be older than the
#    stub build above; the touch makes cargo rebuild tusgate itself instead of keeping the stub
#    (the --version check fails on the stub, which prints nothing).
COPY src ./src
COPY crates ./crates
RUN touch src/main.rs src/lib.rs crates/bench/src/main.rs crates/bench/src/lib.rs \
    && cargo build --release --locked \
    && objcopy --strip-debug target/release/tusgate target/tusgate \
    && ./target/tusgate --version > target/version.txt \
    && grep '^tusgate ' target/version.txt

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}

ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="tusgate" \
      org.opencontainers.image.description="tus 1.0 uploads, inline upload tokens, atomic finalize and secure_link downloads in one binary (tusd + hooks + nginx replacement)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"

# Unprivileged user with a fixed uid, so volume ownership is predictable across rebuilds. The
# data directory is created and chowned before VOLUME, so a fresh named volume starts out
# writable by that user (Docker copies the image's directory, ownership included).
RUN groupadd --system --gid 10001 tusgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tusgate \
    && mkdir -p /srv/assets/.uploads \
    && chown -R 10001:10001 /srv/assets

# tusgate needs only libc and libgcc_s (both in the slim image). The CA bundle is taken from the
# builder image rather than installed with apt, so the build downloads nothing but crates; it
# lets an S3 backend reach endpoints over https.
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /build/target/tusgate /usr/local/bin/tusgate

# Data layout: published assets at /srv/assets/<visibility>/<key>, in-flight uploads under
# /srv/assets/.uploads. Both on one volume, so publishing is an atomic rename. Downloads never
# expose .uploads (only the public and private prefixes are served).
ENV TUSGATE_HOST=0.0.0.0 \
    TUSGATE_PORT=8080 \
    TUSGATE_UPLOAD_DIR=/srv/assets/.uploads \
    TUSGATE_ASSETS_DIR=/srv/assets \
    TUSGATE_HEALTHCHECK_ADDR=127.0.0.1:8080
VOLUME ["/srv/assets"]
EXPOSE 8080

USER 10001:10001

# No curl in the image: the binary checks itself (GET /health must answer 200). The address
# comes from TUSGATE_HEALTHCHECK_ADDR above; change it together with TUSGATE_PORT. With TLS
# (TUSGATE_TLS_CERTIFICATE, TUSGATE_TLS_KEY) also set TUSGATE_HEALTHCHECK_TLS=true.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/tusgate", "healthcheck"]

# SIGTERM starts a graceful shutdown: in-flight uploads are answered 503 and persisted within
# --shutdown-timeout (10s by default), so give `docker stop -t` / stop_grace_period more than
# that. tusgate installs its own signal handlers, so it behaves correctly as PID 1.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tusgate"]
CMD ["serve"]
