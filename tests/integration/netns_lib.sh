# shellcheck shell=bash
# shellcheck disable=SC2016  # on_exit hooks are eval'ed later: single quotes are meant
# Network namespaces of the test's own, for the tests where attackers and clients reach a
# site over real TCP and an agent bans them in nftables: a server namespace, the others
# joined to it by veth pairs; nginx and the agent run in the server's. Sourced after
# lib.sh, never run alone.
#
#   source "$(dirname "$0")/lib.sh"
#   source "$(dirname "$0")/netns_lib.sh"
#   SRV=mamori-srv-$$ ATT=mamori-att-$$
#   netns_add "$SRV" "$ATT"                               # removed at exit
#   netns_link "$SRV" 10.77.1.1/24 "$ATT" 10.77.1.2/24 10.77.1.3/24
#   log_ban_config "$SCRATCH/www"                         # [[log]] $ACCESS_LOG, [ban] nftables
#   AGENT_NETNS=$SRV start_agent                          # lib.sh's, inside $SRV
#   start_nginx_in "$SRV" <<<'server { listen 10.77.1.1:80; root ...; }'
#   in_ns "$ATT" curl ...; banned 10.77.1.2
#
# Names: namespaces are the test's (put $$ in them), so the server-side ends of the veth
# pairs, numbered here, cannot clash with another test's.

command -v nft >/dev/null || fail "nft not installed (tools/install-deps)"
command -v nginx >/dev/null || fail "nginx not installed (tools/install-deps)"
ACCESS_LOG=${ACCESS_LOG:-$SCRATCH/web/access.log}
NGINX=""
_NETNS_LINKS=0

# netns_add NAME...: new network namespaces, each with its loopback up; deleted at exit.
netns_add() {
  local ns
  for ns in "$@"; do
    ip netns add "$ns"
    on_exit "ip netns del $ns"
    ip -n "$ns" link set lo up
  done
}

# netns_link NS ADDR PEER_NS PEER_ADDR...: a veth pair between NS (the end numbered
# here, with ADDR) and PEER_NS (its eth0, with every PEER_ADDR), both up. Addresses carry
# their prefix length; IPv6 ones skip duplicate address detection (usable at once).
netns_link() {
  local ns=$1 addr=$2 peer=$3 a
  shift 3
  _NETNS_LINKS=$((_NETNS_LINKS + 1))
  local dev=veth$_NETNS_LINKS
  ip link add "$dev" netns "$ns" type veth peer name eth0 netns "$peer"
  _netns_addr "$ns" "$dev" "$addr"
  for a in "$@"; do _netns_addr "$peer" eth0 "$a"; done
  ip -n "$ns" link set "$dev" up
  ip -n "$peer" link set eth0 up
}
_netns_addr() {  # NS DEV ADDR
  if [[ $3 == *:* ]]; then ip -n "$1" addr add "$3" dev "$2" nodad; else ip -n "$1" addr add "$3" dev "$2"; fi
}

# in_ns NS CMD...: CMD inside NS. (Not for background processes: $! would be the
# function's subshell; write `ip netns exec NS CMD &` for those.)
in_ns() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# log_ban_config ROOT [TOML LINE...]: appends to $CONFIG a [[log]] reading $ACCESS_LOG
# (nginx's combined format) for ROOT, and a [ban] table with the nftables backend and a
# 600 s TTL, then the TOML LINEs (more [ban] keys). After agent_config.
log_ban_config() {
  local root=$1 l
  shift
  {
    echo "[[log]]"
    echo "path = \"$ACCESS_LOG\""
    echo "format = \"combined\""
    echo "root = \"$root\""
    echo "[ban]"
    echo "backend = \"nftables\""
    echo "ttl = 600"
    for l in "$@"; do echo "$l"; done
  } >>"$CONFIG"
}

# start_nginx_in NS <<EOF ... EOF: nginx in NS, in the foreground (daemon off, so NGINX
# is its master's pid; stopped at exit), workers as www-data, logging each request to
# $ACCESS_LOG in the combined format; its config, pid, error log and temporary files in
# $SCRATCH/web (www-data must be able to traverse $SCRATCH). Its standard input goes
# inside http {}: the server blocks, and a default_type (text/html otherwise). The
# caller waits for it to answer, as only it knows how.
start_nginx_in() {
  local ns=$1 dir=$SCRATCH/web http
  http=$(cat)
  mkdir -p "$dir"
  chmod 0755 "$dir"
  local type="default_type text/html;"
  [[ $http == *default_type* ]] && type=""
  cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
user www-data www-data;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 256; }
http {
  access_log $ACCESS_LOG combined;
  client_body_temp_path $dir/nginx-body;
  fastcgi_temp_path $dir/nginx-fastcgi;
  $type
$http
}
EOF
  ip netns exec "$ns" nginx -c "$dir/nginx.conf" -e "$dir/error.log" &
  NGINX=$!
  on_exit 'stop_pid $NGINX nginx'
}

# banned ADDRESS: the agent has written an ip-banned event for ADDRESS. (No `| grep -q`:
# under pipefail, events' write to a pipe grep closed early would make it false.)
banned() { [[ -n $(events 'e["event"]["action"] == "ip-banned" and e["source"]["ip"] == "'"$1"'"') ]]; }

# start_sshd_in NS DEVLOG ADDR...: a real sshd in NS on port 2222 of each ADDR (passwords
# on, root by key only: $SCRATCH/authorized_keys), logging (facility auth, level INFO)
# to the syslog socket DEVLOG: it runs in a mount namespace of its own whose /dev holds
# the host's null, zero, random and urandom, and log -> DEVLOG. Host key and stderr
# ($SCRATCH/sshd.stderr) in $SCRATCH; SSHD is its pid, stopped at exit.
start_sshd_in() {
  local ns=$1 devlog=$2 a listen=()
  shift 2
  for a in "$@"; do listen+=(-o "ListenAddress=$a"); done
  if [[ ! -d /run/sshd ]]; then  # sshd's privilege separation directory
    mkdir -m 0755 /run/sshd
    on_exit "rmdir /run/sshd"
  fi
  ssh-keygen -q -t ed25519 -N '' -C '' -f "$SCRATCH/sshd_host_key"
  mkdir -p "$SCRATCH/dev"
  for a in null zero random urandom; do : >"$SCRATCH/dev/$a"; done
  ln -s "$devlog" "$SCRATCH/dev/log"
  ip netns exec "$ns" unshare -m --propagation private sh -c '
    for n in null zero random urandom; do mount --bind /dev/$n "$1/dev/$n" || exit 1; done
    mount --bind "$1/dev" /dev || exit 1
    d=$1
    shift
    exec /usr/sbin/sshd -D -f /dev/null "$@" -o PidFile=none -p 2222 -h "$d/sshd_host_key" \
      -o AuthorizedKeysFile="$d/authorized_keys" -o StrictModes=no \
      -o PasswordAuthentication=yes -o PermitRootLogin=prohibit-password -o UseDNS=no \
      -o MaxStartups=100 -o LogLevel=INFO -o SyslogFacility=AUTH' _ "$SCRATCH" "${listen[@]}" \
    2>"$SCRATCH/sshd.stderr" &
  SSHD=$!
  on_exit 'stop_pid $SSHD sshd'
}

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=3 -p 2222)
# ssh_guess NS SOURCE SERVER USER PASSWORD: one password guess from SOURCE (an address of
# NS) to SERVER's port 2222; true when it was refused. The guess that gets its address
# banned may hang until GUESS_TIMEOUT (10 s): the ban can come from a line sshd writes
# before the guess ends ("Invalid user ..."), and the firewall drops it in flight.
ssh_guess() {
  local rc=0
  ip netns exec "$1" timeout "${GUESS_TIMEOUT:-10}" sshpass -p "$5" ssh "${SSH_OPTS[@]}" -b "$2" \
    -o PreferredAuthentications=password -o PubkeyAuthentication=no \
    -o NumberOfPasswordPrompts=1 -l "$4" "$3" true </dev/null >/dev/null 2>&1 || rc=$?
  ((rc != 0))
}
