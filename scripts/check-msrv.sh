#!/usr/bin/env bash
# Checks the workspace's declared MSRV (`rust-version` in Cargo.toml) as far
# as CI can without that toolchain: CI has only a current stable Rust and
# cannot download an old one. Two halves:
#
# 1. This script: fails when a dependency in Cargo.lock declares a
#    `rust-version` newer than ours, i.e. one that an MSRV toolchain would
#    refuse to build.
# 2. clippy's `incompatible_msrv` lint (warn by default, denied by test.sh's
#    `-D warnings`): it reads our `rust-version` and flags every use of a
#    standard-library API stabilised after it.
#
# Neither catches newer *language* features or compiler fixes we might rely
# on, nor dependencies that do not declare a `rust-version`; only a build
# with the MSRV toolchain itself would. Run
# `cargo +<MSRV> check --workspace --all-targets` where it can be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v jq >/dev/null || bash scripts/apt-install.sh jq

metadata=$(cargo metadata --format-version 1 --locked)
# A version as a comparable array: "1.85" -> [1,85,0].
version='split(".") | map(split("-")[0] | tonumber) | (. + [0, 0, 0])[:3]'
ours=$(jq -r '[.packages[] | select(.source == null) | .rust_version] | unique | .[]' <<<"$metadata")
if [ "$(wc -l <<<"$ours")" -ne 1 ] || [ -z "$ours" ] || [ "$ours" = null ]; then
    echo "error: the workspace crates must share one rust-version (workspace.package), found: $ours" >&2
    exit 1
fi
newer=$(jq -r --arg ours "$ours" "
    (\$ours | $version) as \$msrv
    | .packages[]
    | select(.source != null and .rust_version != null)
    | select((.rust_version | $version) > \$msrv)
    | \"  \(.name) \(.version) needs Rust \(.rust_version)\"" <<<"$metadata")
if [ -n "$newer" ]; then
    echo "error: dependencies newer than the workspace's rust-version $ours:" >&2
    echo "$newer" >&2
    echo "raise rust-version in Cargo.toml, or pin these to older releases (cargo update --precise)" >&2
    exit 1
fi
echo "msrv: no dependency needs a Rust newer than $ours"
