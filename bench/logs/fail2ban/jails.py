#!/usr/bin/env python3
"""Which addresses fail2ban would ban, from fail2ban-regex's matches.

    jails.py CONF_DIR MATCHES_DIR > bans.tsv

fail2ban-regex applies one filter and prints every match; it does not apply the
jail (maxretry failures within findtime). This does, with fail2ban 1.0's own arithmetic
(FailManager.addFailure, FailTicket.adjustTime, FailManager.cleanup) on log time:
per jail and address a ticket counts failures; a failure more than `findtime`
after the ticket's first one scales the count down to the rate over the last
`findtime` seconds; a ticket whose last failure is `findtime` old is dropped; the
address is banned when the count reaches `maxretry`. A banned address counts as
banned for the rest of the log (the question is "was it ever banned").

CONF_DIR is the fail2ban configuration run.sh built (Debian's, plus
jail.local.in); each enabled jail's maxretry and findtime are read from
`fail2ban-client -c CONF_DIR -d`, so the jails' shipped settings are used.
MATCHES_DIR holds one NAME.matches per jail: fail2ban-regex's
`-o '<ip> <time>'` output (address, epoch seconds, one match a line).

Output, tab-separated, one line per banned address and jail:
    jail  address  ban_epoch  failures_seen_by_then
"""

import ast
import collections
import os
import subprocess
import sys

from fail2ban.server.mytime import MyTime


def jail_settings(conf_dir):
    """{jail: (maxretry, findtime_seconds)} of the enabled jails."""
    dump = subprocess.run(["fail2ban-client", "-c", conf_dir, "-d"], check=True,
                          capture_output=True, text=True).stdout
    out = collections.defaultdict(dict)
    for line in dump.splitlines():
        if not line.startswith("["):
            continue
        cmd = ast.literal_eval(line)
        if cmd[0] == "set" and len(cmd) == 4 and cmd[2] in ("maxretry", "findtime"):
            out[cmd[1]][cmd[2]] = cmd[3]
    return {j: (int(s.get("maxretry", 5)), MyTime.str2seconds(str(s.get("findtime", "10m"))))
            for j, s in out.items()}


def bans(matches_path, maxretry, findtime):
    """[(address, ban_time, count_at_ban)] in ban order."""
    tickets = {}  # address -> [first, last, retry]
    banned = {}
    with open(matches_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.split()
            if len(parts) != 2:
                continue  # fail2ban-regex's own messages
            ip, t = parts[0], float(parts[1])
            if ip in banned:
                continue
            tk = tickets.get(ip)
            if tk is None or tk[1] <= t - findtime:  # new, or dropped by cleanup()
                tk = tickets[ip] = [t, t, 0]
            elif t > tk[1]:
                if tk[0] < t - findtime:
                    tk[2] = int(round(tk[2] / float(t - tk[0]) * findtime))
                    tk[0] = t - findtime
                tk[1] = t
            tk[2] += 1
            if tk[2] >= maxretry:
                banned[ip] = (t, tk[2])
                del tickets[ip]
    return [(ip, t, n) for ip, (t, n) in banned.items()]


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    conf_dir, matches_dir = argv[1], argv[2]
    for jail, (maxretry, findtime) in sorted(jail_settings(conf_dir).items()):
        path = os.path.join(matches_dir, jail + ".matches")
        if not os.path.exists(path):
            continue
        for ip, t, n in bans(path, maxretry, findtime):
            print("%s\t%s\t%d\t%d" % (jail, ip, t, n))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
