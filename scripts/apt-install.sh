#!/usr/bin/env bash
# Installs those of the Debian packages named on the command line that are not
# installed yet. When all are, it does nothing: no apt-get, no sudo, no network.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
command -v apt-get >/dev/null || {
    echo "error: these Debian packages are missing and there is no apt-get to install them: ${missing[*]}" >&2
    exit 1
}
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
$sudo apt-get update -qq
# krb5-kdc and krb5-user would otherwise ask for a default realm.
$sudo env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
