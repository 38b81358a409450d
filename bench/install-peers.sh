#!/usr/bin/env bash
# install-peers.sh - install what the FIM benchmark (bench/fim/run.sh) and the open
# gate's web benchmark (bench/gate/web.sh: wrk, nginx, php-fpm) need on
# a Debian 12 machine: the peer tools (AIDE, Tripwire, Samhain), GNU time, jq,
# and the packages bench/tools/make_corpus.sh copies its corpus from.
#
# Idempotent: packages already installed are left alone; `apt-get update` runs
# only when something is missing. Tripwire's debconf questions are preseeded
# (no site/local key generation, no config/policy rebuild: the benchmark makes
# its own throw-away keys under its work dir) so nothing prompts.
# Must run as root.
set -euo pipefail

# name of the Debian package -> why it is needed
readonly PACKAGES=(
    aide        # peer: AIDE
    tripwire    # peer: Tripwire
    samhain     # peer: Samhain
    time        # /usr/bin/time -f for wall/CPU/peak RSS
    jq          # counting mamori's --json changes
    coreutils   # sha256sum, shuf, du, stat
    findutils   # find, xargs
    tar         # make_corpus.sh
    util-linux  # unshare (fim_peers.sh runs samhain in a private mount namespace)
    mount       # mount --bind (same)
    debconf     # debconf-set-selections
    wordpress   # corpus source (make_corpus.sh)
    phpmyadmin  # corpus source
    mediawiki   # corpus source
    wrk         # bench/gate/web.sh: nginx's requests/s with and without the open gate
    nginx-light # bench/gate/web.sh
    php-fpm     # bench/gate/web.sh (one PHP page)
)

[[ $(id -u) -eq 0 ]] || { echo "install-peers.sh: must run as root" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
    echo "install-peers.sh: all ${#PACKAGES[@]} packages already installed" >&2
    exit 0
fi

# Tripwire asks whether to create site/local keys and rebuild its config and
# policy; answer "no" to all (the benchmark keeps its own keys and policy).
# phpMyAdmin (only its files are used) would try to set up a MySQL database.
debconf-set-selections <<'SEL'
tripwire tripwire/use-sitekey boolean false
tripwire tripwire/use-localkey boolean false
tripwire tripwire/rebuild-config boolean false
tripwire tripwire/rebuild-policy boolean false
tripwire tripwire/upgrade boolean true
tripwire tripwire/email-report note
tripwire tripwire/installed note
phpmyadmin phpmyadmin/dbconfig-install boolean false
phpmyadmin phpmyadmin/reconfigure-webserver multiselect
SEL

echo "install-peers.sh: installing ${missing[*]}" >&2
apt-get update >&2
# No Recommends: they would pull in a database server and a mail transport.
apt-get install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >&2

for p in "${PACKAGES[@]}"; do
    installed "$p" || { echo "install-peers.sh: $p did not install" >&2; exit 1; }
done
echo "install-peers.sh: done" >&2
