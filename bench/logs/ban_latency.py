#!/usr/bin/env python3
"""Ban latency of a live log-banning daemon: from the write() of the log line that
should get an address banned to the nftables element for that address appearing.

    ban_latency.py --peer fail2ban|mamori --netns NS --log FILE
                   [--attackers 100] [--rate 200] [--prime N] [--settle 0.3]
                   [--timeout 5] [--warmup-timeout 60] [--seed 1] [--csv OUT]

The daemon under test (started by bench/logs/run.sh inside network namespace NS)
tails FILE, an nginx access log in the combined format, and bans into nftables in
NS. This program appends to FILE, one write() per line, on an O_APPEND descriptor:

  - benign page views from 198.18.0.0/15 at a steady --rate lines per second, all
    the time (the daemon parses them as it would on a busy site);
  - for each of --attackers addresses in turn (plus one warm-up address first, not
    counted): --prime lines the daemon needs before it bans (a threshold rule's
    first maxretry-1 failures), one line per benign tick; then --settle seconds of
    benign lines only (a ban now is counted as "early"); then the trigger line, the
    one that completes the rule. t0 is read just before that write().
  - the ban is seen with `nft monitor` running in NS: an event, not a
    poll; the time is read when the event's line arrives on the pipe. Latency is
    that time minus t0; none within --timeout seconds is a time-out.

At the end the sets are listed (`nft -j list ruleset` in NS) to check that every
address seen banned is really in a set. What differs between peers is only the
Peer record below: which nftables set means "banned" and which lines trigger it.

Prints a summary (parsed by run.sh):
    peer P samples N banned B timeouts T early E in_set S
    latency_ms min .. p50 .. p90 .. p99 .. max .. mean ..
and with --csv one line per address: index,ip,status,latency_ms.
"""

import argparse
import dataclasses
import json
import os
import random
import re
import select
import subprocess
import sys
import time

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"


def now_local():
    t = time.gmtime()
    return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
        t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)


def combined(ip, method, target, status, size, ua=UA, referer="-"):
    return '%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s"\n' % (
        ip, now_local(), method, target, status, size, referer, ua)


@dataclasses.dataclass
class Peer:
    """How a daemon says "banned" and what makes it ban."""
    table: str                 # nftables family and table, e.g. "inet f2b-table"
    set_pattern: str           # regex for the set names in that table that hold bans
    prime: int                 # lines before the trigger line
    prime_line: object         # ip -> log line
    trigger_line: object       # ip -> log line

    def banned(self, event):
        """Addresses an `nft monitor` line adds to one of this peer's sets."""
        m = re.match(r"add element (\S+ \S+) (\S+) \{ (.*) \}", event)
        if not m or m.group(1) != self.table or not re.fullmatch(self.set_pattern, m.group(2)):
            return []
        return [e.strip().split()[0] for e in m.group(3).split(",") if e.strip()]

    def members(self, ruleset):
        """Addresses in this peer's sets, from `nft -j list ruleset`."""
        family, table = self.table.split()
        out = set()
        for obj in ruleset.get("nftables", []):
            s = obj.get("set")
            if not s or s.get("family") != family or s.get("table") != table:
                continue
            if not re.fullmatch(self.set_pattern, s.get("name", "")):
                continue
            for e in s.get("elem", []):
                v = e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
                if isinstance(v, str):
                    out.add(v)
        return out


PEERS = {
    # Debian's action.d/nftables.conf: table inet f2b-table, one set addr-set-<jail>
    # per jail. nginx-botsearch (shipped filter, jail maxretry 5): 404s on phpMyAdmin,
    # webmail and wp-login paths; the 5th one bans.
    "fail2ban": Peer(
        table="inet f2b-table", set_pattern=r"addr6?-set-.*", prime=4,
        prime_line=lambda ip: combined(ip, "GET", "/phpmyadmin/index.php", 404, 162),
        trigger_line=lambda ip: combined(ip, "GET", "/phpmyadmin/index.php", 404, 162)),
    # mamori's own table and sets; a UNION SELECT (rule sqli-union-select) bans at once.
    "mamori": Peer(
        table="inet mamori", set_pattern=r"banned[46]", prime=0,
        prime_line=lambda ip: combined(ip, "GET", "/index.php?id=1", 200, 5120),
        trigger_line=lambda ip: combined(ip, "GET", "/index.php?id=-1+UNION+SELECT+1,2,3--+-", 200, 5120)),
}


class Monitor:
    """`nft monitor` in a namespace, read line by line with arrival times."""

    def __init__(self, netns):
        self.netns = netns
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "nft", "monitor"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.fd = self.proc.stdout.fileno()
        self.buf = b""

    def read(self, timeout):
        """[(arrival_time, line)] that arrive within timeout seconds (maybe none)."""
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return []
        chunk = os.read(self.fd, 65536)
        t = time.monotonic()
        if not chunk:
            raise RuntimeError("nft monitor exited")
        self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        return [(t, ln.decode("utf-8", "replace")) for ln in lines]

    def wait_live(self, timeout=10.0):
        """Returns once the monitor is subscribed: it reports a probe table we add."""
        probe = "mamori_bench_probe_%d" % os.getpid()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            nft(self.netns, "add table inet %s" % probe)
            nft(self.netns, "delete table inet %s" % probe)
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                for _, ln in self.read(end - time.monotonic()):
                    if probe in ln:
                        return
        raise RuntimeError("nft monitor did not report within %.0f s" % timeout)

    def close(self):
        self.proc.terminate()
        self.proc.wait()


def nft(netns, *args, capture=False):
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *args], check=True,
                          capture_output=capture, text=True).stdout


class Driver:
    def __init__(self, args, peer, monitor):
        self.peer = peer
        self.mon = monitor
        self.fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.period = 1.0 / args.rate
        self.next_benign = time.monotonic()
        self.rng = random.Random(args.seed)
        self.ban_times = {}  # ip -> first time seen banned
        self.pending = []    # lines to write on the next ticks (priming)

    def write(self, line):
        os.write(self.fd, line.encode())

    def benign_line(self):
        ip = "198.%d.%d.%d" % (self.rng.randint(18, 19), self.rng.randint(0, 255), self.rng.randint(1, 254))
        path = self.rng.choice(("/", "/about/", "/2023/05/bread-recipe/", "/feed/",
                                "/wp-content/themes/kadence/style.css?ver=1.1.51", "/?s=soup"))
        return combined(ip, "GET", path, 200, self.rng.randint(2000, 60000))

    def run(self, until, ip=None):
        """Writes on schedule and reads bans until `until`, or until ip is banned."""
        while True:
            now = time.monotonic()
            if ip is not None and ip in self.ban_times:
                return True
            if now >= self.next_benign:  # before the deadline check: priming relies on it
                self.write(self.pending.pop(0) if self.pending else self.benign_line())
                self.next_benign += self.period
                if self.next_benign < now - 1.0:  # fell far behind: do not burst
                    self.next_benign = now
                continue
            if now >= until:
                return False
            for t, ln in self.mon.read(min(until, self.next_benign) - now):
                for b in self.peer.banned(ln):
                    self.ban_times.setdefault(b, t)

    def attack(self, ip, settle, timeout):
        """Returns ("ok", latency_s), ("timeout", None) or ("early", None)."""
        self.pending = [self.peer.prime_line(ip) for _ in range(self.peer.prime)]
        while self.pending:
            self.run(self.next_benign + self.period / 2)
        self.run(time.monotonic() + settle)
        if ip in self.ban_times:
            return "early", None
        line = self.peer.trigger_line(ip).encode()
        t0 = time.monotonic()
        os.write(self.fd, line)
        if self.run(t0 + timeout, ip):
            return "ok", self.ban_times[ip] - t0
        return "timeout", None


def attacker_addresses(n):
    """n distinct documentation-range IPv4 addresses (203.0.113/24, then 198.51.100/24, ...)."""
    nets = ("203.0.113", "198.51.100", "192.0.2")
    out = []
    for net in nets:
        for host in range(1, 255):
            out.append("%s.%d" % (net, host))
    if n > len(out):
        raise SystemExit("at most %d attackers" % len(out))
    return out[:n]


def pct(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return None
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peer", required=True, choices=sorted(PEERS))
    ap.add_argument("--netns", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--attackers", type=int, default=100)
    ap.add_argument("--rate", type=float, default=200.0, help="benign lines per second")
    ap.add_argument("--prime", type=int, default=None, help="override the peer's priming line count")
    ap.add_argument("--settle", type=float, default=0.3)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--warmup-timeout", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args(argv)
    peer = PEERS[a.peer]
    if a.prime is not None:
        peer = dataclasses.replace(peer, prime=a.prime)

    mon = Monitor(a.netns)
    try:
        mon.wait_live()
        d = Driver(a, peer, mon)
        addrs = attacker_addresses(a.attackers + 1)
        status, _ = d.attack(addrs[0], a.settle, a.warmup_timeout)
        if status != "ok":
            print("peer %s: the warm-up attacker %s was not banned within %.0f s (%s)"
                  % (a.peer, addrs[0], a.warmup_timeout, status), file=sys.stderr)
            return 1
        rows = []
        for i, ip in enumerate(addrs[1:], 1):
            status, lat = d.attack(ip, a.settle, a.timeout)
            rows.append((i, ip, status, lat))
            d.run(time.monotonic() + 0.05)
        ruleset = json.loads(nft(a.netns, "-j", "list", "ruleset", capture=True))
    finally:
        mon.close()

    in_set = peer.members(ruleset)
    lat = sorted(r[3] * 1e3 for r in rows if r[2] == "ok")
    n_ok = len(lat)
    print("peer %s samples %d banned %d timeouts %d early %d in_set %d" % (
        a.peer, len(rows), n_ok, sum(r[2] == "timeout" for r in rows),
        sum(r[2] == "early" for r in rows), sum(r[1] in in_set for r in rows)))
    if lat:
        print("latency_ms min %.3f p50 %.3f p90 %.3f p99 %.3f max %.3f mean %.3f" % (
            lat[0], pct(lat, 50), pct(lat, 90), pct(lat, 99), lat[-1], sum(lat) / n_ok))
    if a.csv:
        with open(a.csv, "w", encoding="ascii") as f:
            f.write("index,ip,status,latency_ms\n")
            for i, ip, status, l in rows:
                f.write("%d,%s,%s,%s\n" % (i, ip, status, "" if l is None else "%.3f" % (l * 1e3)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
