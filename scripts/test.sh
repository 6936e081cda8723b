#!/usr/bin/env bash
# The full test suite: formatting, lints with warnings denied, every test.
# Broker-backed tests start real Apache Kafka from jars that
# tests/brokers/install.sh resolves through Maven once and caches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/brokers/install.sh >/dev/null
# Debian packages the tests call: promtool checks the shipped alert rules
# (prometheus), curl checks the HTTPS listener as an operator would.
missing=()
command -v promtool >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# librdkafka links the system libcurl for OAUTHBEARER/OIDC (Cargo.toml's
# rdkafka `curl` feature); without the development package it builds without
# OIDC and the OIDC tests fail.
if ! pkg-config --exists libcurl 2>/dev/null; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends libcurl4-openssl-dev pkg-config >/dev/null
    # A librdkafka configured before the package existed has no OIDC.
    cargo clean -p rdkafka-sys
fi
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --test-threads=2
