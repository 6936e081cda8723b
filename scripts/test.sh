#!/usr/bin/env bash
# The full test suite: formatting, lints with warnings denied, API docs,
# the dependency policy, the MSRV, every test.
# Broker-backed tests start real Apache Kafka from jars that
# tests/brokers/install.sh resolves through Maven once and caches.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the build and the tests need (installed once, skipped when
# present): promtool checks the shipped alert rules (prometheus), curl checks
# the HTTPS listener as an operator would; librdkafka's Kerberos support
# builds against libsasl2-dev (via pkg-config) and uses the GSSAPI plugin at
# run time; the Kerberos tests run an MIT KDC (krb5-kdc, kadmin.local from
# krb5-admin-server) and librdkafka calls kinit (krb5-user). The C toolchain,
# OpenSSL and zlib build librdkafka; python3-venv serves the bench's Python
# contender.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
# Java and Maven resolve and run the test brokers (tests/brokers/install.sh).
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# librdkafka links the system libcurl for OAUTHBEARER/OIDC (Cargo.toml's
# rdkafka `curl` feature); a librdkafka configured before libcurl's
# development package existed has no OIDC, so it is rebuilt once.
had_libcurl=yes
pkg-config --exists libcurl 2>/dev/null || had_libcurl=no
bash scripts/apt-install.sh ${missing[@]+"${missing[@]}"} \
    build-essential pkg-config libssl-dev zlib1g-dev libcurl4-openssl-dev python3-venv \
    libsasl2-dev libsasl2-modules-gssapi-mit krb5-kdc krb5-admin-server krb5-user
if [ "$had_libcurl" = no ]; then
    cargo clean -p rdkafka-sys
fi
bash tests/brokers/install.sh >/dev/null
# The Schema Registry (Apicurio, Confluent-compatible API) and the Python
# registry clients the schema migration tests run, built once and cached.
bash tests/registry/install.sh >/dev/null
cargo fmt --all -- --check
# Clippy also checks the MSRV's std APIs (incompatible_msrv, see below).
cargo clippy --workspace --all-targets -- -D warnings
# The API docs, with rustdoc's warnings (broken intra-doc links, ...) denied.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
# Dependency policy (deny.toml): licenses, banned and duplicate crates,
# registries. cargo-deny is installed once and kept in ~/.cargo/bin.
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny@0.20.2
cargo deny check licenses bans sources
# The declared rust-version against the dependencies' (no MSRV toolchain
# here: see the script for what is and is not checked).
bash scripts/check-msrv.sh
cargo test --workspace -- --test-threads=2
