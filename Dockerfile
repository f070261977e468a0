# syntax=docker/dockerfile:1
# The kms-plugin container image: docker build -t REGISTRY/kms-plugin:0.1.0 .
#
# Stage 1 builds with the project's own script, exactly as a developer or CI machine does
# (scripts/dev.sh: `deps` installs the one PACKAGES list CI installs, `release` is a Release build
# of only the binary). Every RUN of this stage is a `scripts/dev.sh <subcommand>`; the rule is
# checked by tests/deploy/deploy_files_test.py.
# Stage 2 is debian:12-slim with the binary and the runtime libraries it links (ldd) or loads
# (libcurl4: dlopen()ed by --kms aws and --kms vault), as a numeric non-root user.
FROM debian:12 AS build
WORKDIR /src
COPY scripts/dev.sh scripts/dev.sh
RUN scripts/dev.sh deps
COPY . .
RUN scripts/dev.sh release

FROM debian:12-slim
# Runtime libraries of build-release/kms-plugin, by Debian package (libc6, libgcc-s1 and
# libstdc++6 are in debian:12-slim already: apt depends on them). ca-certificates: TLS to the KMS.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates libabsl20220623 libc-ares2 libcivetweb1 libcurl4 libfmt9 libgrpc++1.51 \
      libgrpc29 libprometheus-cpp-core1.0 libprotobuf32 libre2-9 libsodium23 libssl3 \
      libyaml-cpp0.7 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build-release/kms-plugin /usr/local/bin/kms-plugin
# 65532: the conventional "nonroot" uid; no entry in /etc/passwd is needed. The static pods in
# deploy/ override it with runAsUser: 0 (no capabilities) to create the socket in a root-owned
# host directory.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kms-plugin"]
CMD ["serve", "--help"]
