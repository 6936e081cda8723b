#!/usr/bin/env bash
# The first thing to run: installs what building Ferry needs beyond Rust, then
# runs the demo (two embedded clusters, live traffic, a record-for-record check).
#
# librdkafka is built with Kerberos (GSSAPI) support, which links the system's
# Cyrus SASL library: its headers come from libsasl2-dev, found via pkg-config.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! pkg-config --exists libsasl2 2>/dev/null; then
    if command -v apt-get >/dev/null; then
        bash scripts/apt-install.sh pkg-config libsasl2-dev
    else
        echo "error: building Ferry needs pkg-config and the Cyrus SASL development files" \
             "(Debian/Ubuntu: libsasl2-dev, Fedora: cyrus-sasl-devel, macOS: brew install cyrus-sasl)" >&2
        exit 1
    fi
fi
exec cargo run --release -p ferry -- demo "$@"
