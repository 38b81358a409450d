#!/usr/bin/env bash
# bench/million/make_corpus.sh - a web tree of a million files for the agent's
# large-scale figures (issue 17, "A million files").
#
# Usage: bench/million/make_corpus.sh [DEST]     (default /var/tmp/mamori-million/corpus)
#
# The trees come from Debian's wordpress, phpmyadmin, mediawiki and dokuwiki packages
# (installed with apt-get when missing), copied once with symbolic links dereferenced
# into DEST.template (beside DEST, not part of it): one "site" of about 31,000 files,
# 350 MB. DEST/site001, DEST/site002, ... are copies of it (cp -a: real copies, no hard
# links between sites) until DEST holds TARGET_FILES files exactly:
#
#   site001   identical to DEST.template (restore benchmarks tamper it and use the
#             template as the backup)
#   others    per-copy changes, so the store cannot keep one copy of everything:
#             CHANGE_PCT % of the text files (.php .js .css .txt .json .html .md .xml
#             .tpl .yml .twig, chosen by a hash of site and path) end with a comment
#             naming the site; every site has its own wp-config.php salts; and the files
#             left to reach TARGET_FILES are unique small uploads (300-3,000 bytes of
#             words) spread over the sites' wp-content/uploads/<year>/<month>/.
#
# Deterministic for a given SEED and package versions. Idempotent: DEST.stamp records
# what was built; when it matches, the file count is right and nothing changed after it
# was written (ctime), nothing is done, otherwise DEST is rebuilt. A DEST without a stamp
# is never deleted.
#
# Environment: TARGET_FILES=1000000  CHANGE_PCT=3  SEED=1
# Needs root (apt-get; ownership of copied files). Disk: about 12 GB for a million
# files. Remove with: rm -rf DEST DEST.template DEST.stamp
set -euo pipefail

readonly PACKAGES=(wordpress phpmyadmin mediawiki dokuwiki)
TARGET_FILES=${TARGET_FILES:-1000000}
CHANGE_PCT=${CHANGE_PCT:-3}
SEED=${SEED:-1}

die() { echo "make_corpus.sh: $*" >&2; exit 1; }
say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

dest=${1:-/var/tmp/mamori-million/corpus}
dest=${dest%/}
[[ -n $dest && $dest != / ]] || die "refusing DEST '$dest'"
[[ $(id -u) -eq 0 ]] || die "must run as root (apt-get, ownership of copied files)"
command -v python3 >/dev/null || die "needs python3"

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    say "installing ${missing[*]} from Debian"
    export DEBIAN_FRONTEND=noninteractive
    # Recommends would add a database and a web server; the corpus needs the files only.
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}

versions() {
    local p
    for p in "${PACKAGES[@]}"; do dpkg-query -W -f='${Package}=${Version} ' "$p"; done
}

count_files() { find "$1" -type f | wc -l; }

# The four package trees in $1, links dereferenced (as make_corpus.sh of bench/tools:
# dangling links and MediaWiki's extensions-core shadow directory left out).
make_template() {
    local into=$1 excludes
    excludes=$(mktemp)
    (cd /usr/share && find -L "${PACKAGES[@]}" -type l -print) >"$excludes"
    echo "mediawiki/extensions-core" >>"$excludes"
    mkdir -p "$into"
    tar -C /usr/share --dereference --anchored --exclude-from="$excludes" \
        -cf - "${PACKAGES[@]}" | tar -C "$into" -xf -
    rm -f "$excludes"
}

ensure_packages
stamp=$dest.stamp template=$dest.template
want="target=$TARGET_FILES change_pct=$CHANGE_PCT seed=$SEED $(versions)"

if [[ -e $dest ]]; then
    if [[ -f $stamp ]] && [[ $(head -n1 "$stamp") == "$want" ]] &&
        [[ $(sed -n 2p "$stamp") == "files=$(count_files "$dest")" ]] &&
        [[ -z $(find "$dest" "$template" -cnewer "$stamp" -print -quit) ]]; then
        say "corpus up to date: $(sed -n 2,3p "$stamp" | tr '\n' ' ')"
        exit 0
    fi
    [[ -f $stamp ]] || die "$dest exists and was not made by this script; remove it first"
    say "rebuilding $dest (changed since it was built, or built with other settings)"
    rm -rf -- "$dest" "$template"
fi
rm -f -- "$stamp"
mkdir -p "$(dirname "$dest")"

build=$dest.partial.$$
trap 'rm -rf -- "$build" "$build.template"' EXIT
say "template from ${PACKAGES[*]}"
make_template "$build.template"
per_site=$(count_files "$build.template")
sites=$((TARGET_FILES / per_site))
((sites >= 1)) || die "TARGET_FILES $TARGET_FILES is less than one site ($per_site files)"
extra=$((TARGET_FILES - sites * per_site))
say "$sites sites of $per_site files, $extra unique uploads"
mkdir -p "$build"
for ((i = 1; i <= sites; i++)); do
    s=$(printf '%s/site%03d' "$build" "$i")
    cp -a "$build.template" "$s"
    ((i % 5)) || say "site $i of $sites copied"
done

# Per-copy changes and the unique uploads, in one pass of Python (deterministic).
python3 - "$build" "$sites" "$extra" "$CHANGE_PCT" "$SEED" <<'PY'
import hashlib, os, random, sys, zlib

root, sites, extra, pct, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
TEXT = {".php": "// ", ".js": "// ", ".css": "/* ", ".txt": "", ".json": None, ".html": "<!-- ",
        ".md": "", ".xml": "<!-- ", ".tpl": "{* ", ".yml": "# ", ".twig": "{# "}
END = {"/* ": " */", "<!-- ": " -->", "{* ": " *}", "{# ": " #}"}
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu post page comment draft image gallery caption upload theme plugin widget").split()
changed = 0
for i in range(2, sites + 1):
    site = os.path.join(root, "site%03d" % i)
    for d, _, names in os.walk(site):
        for n in names:
            ext = os.path.splitext(n)[1]
            if ext not in TEXT or TEXT[ext] is None:
                continue
            p = os.path.join(d, n)
            rel = os.path.relpath(p, site)
            if zlib.crc32(("%d %d %s" % (seed, i, rel)).encode()) % 100 >= pct:
                continue
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            lead = TEXT[ext]
            with open(p, "a") as f:
                f.write("\n%ssite %03d of the mamori million corpus%s\n" % (lead, i, END.get(lead, "")))
            changed += 1
    cfg = os.path.join(site, "wordpress", "wp-config.php")
    rng = random.Random("%d wp-config %d" % (seed, i))
    with open(cfg, "w") as f:
        f.write("<?php\n/* site %03d */\n" % i)
        for k in ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
                  "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"):
            f.write("define('%s', '%s');\n" % (k, hashlib.sha256(rng.randbytes(32)).hexdigest()))
        f.write("define('DB_NAME', 'site%03d');\n$table_prefix = 'wp_';\n"
                "require_once ABSPATH . 'wp-settings.php';\n" % i)
# Unique uploads: `extra` files over sites 2.., 200 per month directory.
rng = random.Random("%d uploads" % seed)
others = list(range(2, sites + 1)) or [1]
for k in range(extra):
    i = others[k % len(others)]
    n = k // len(others)
    d = os.path.join(root, "site%03d" % i, "wordpress", "wp-content", "uploads",
                     str(2000 + n // 2400), "%02d" % (n // 200 % 12 + 1))
    os.makedirs(d, exist_ok=True)
    words = [rng.choice(WORDS) for _ in range(rng.randint(50, 500))]
    with open(os.path.join(d, "note-%06d.txt" % n), "w") as f:
        f.write("site %03d upload %d\n%s\n" % (i, n, " ".join(words)))
print("changed %d files, %d unique uploads" % (changed, extra), file=sys.stderr)
PY

mv -- "$build.template" "$template"
mv -- "$build" "$dest"
trap - EXIT
files=$(count_files "$dest")
bytes=$(du -sb --apparent-size "$dest" | cut -f1)
dirs=$(find "$dest" -type d | wc -l)
printf '%s\nfiles=%s\nbytes=%s dirs=%s sites=%s per_site=%s\n' "$want" "$files" "$bytes" "$dirs" "$sites" "$per_site" >"$stamp"
say "corpus at $dest: $files files, $bytes bytes (directories included), $dirs directories, $sites sites"
