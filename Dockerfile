# syntax=docker/dockerfile:1
#
# securescore operator image: build with cargo, ship only the binary.
#
# Runtime base: gcr.io/distroless/cc-debian12:nonroot (glibc, libgcc_s, CA certificates, no
# shell, no package manager). A fully static musl build on distroless/static would also work —
# kube uses rustls with ring, so there is no OpenSSL to link — but it needs the musl target and
# musl-gcc for ring's C/assembly parts, and musl's allocator serialises the many small
# allocations CEL evaluation makes across rayon's worker threads. glibc keeps the build plain
# (`cargo build --release --locked`, the same command as everywhere else) and the evaluation fast,
# for ~20 MB of base image.
#
# Build: docker build -t ghcr.io/securescore/securescore:0.1.0 .

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole source tree (see .dockerignore): the binary embeds the CRDs' types and the built-in
# catalog from charts/securescore/catalog/.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin securescore \
    && install -D -m 0755 target/release/securescore /out/securescore

FROM gcr.io/distroless/cc-debian12:nonroot
# 65532 is distroless's "nonroot" user; stated numerically so that runAsNonRoot can verify it.
USER 65532:65532
COPY --from=builder /out/securescore /securescore
EXPOSE 8080
ENTRYPOINT ["/securescore"]
CMD ["run"]
