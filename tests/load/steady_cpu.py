"""A daemon's steady CPU over a window, from /proc: utime and stime of the
whole process (which keep the time of threads that have exited: the
daemon's namespace reads and dumps run on a short-lived thread) and of each
live thread by name, so that the kernel's share (netlink dumps, stime) and
the daemon's own (parsing, comparing, utime) show apart.

Resolution: one clock tick (10 ms at CLK_TCK 100), i.e. 0.014 % of a core
over a 70-s window.
"""

import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _times(stat_path):
    """(utime, stime) in ticks from a /proc stat file, or None if gone."""
    try:
        with open(stat_path) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may hold spaces and parentheses: the fields follow the last ')'.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)


def _comm(tid_dir):
    try:
        with open(os.path.join(tid_dir, "comm")) as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return "?"


def sample(pid):
    """A reading: monotonic time, the process's ticks, each live thread's."""
    threads = {}
    task = "/proc/%d/task" % pid
    for tid in os.listdir(task):
        d = os.path.join(task, tid)
        t = _times(os.path.join(d, "stat"))
        if t is not None:
            threads[int(tid)] = (_comm(d), t)
    total = _times("/proc/%d/stat" % pid)
    if total is None:
        raise RuntimeError("process %d is gone" % pid)
    return {"t": time.monotonic(), "total": total, "threads": threads}


def between(a, b):
    """% of a core between two readings: total, user, system, and by thread
    name (threads that started and ended in between, and those that ended,
    under "exited")."""
    seconds = b["t"] - a["t"]

    def pct(ticks):
        return 100.0 * ticks / CLK_TCK / seconds

    user = b["total"][0] - a["total"][0]
    system = b["total"][1] - a["total"][1]
    by_name = {}
    live_user = live_system = 0
    for tid, (name, (u1, s1)) in b["threads"].items():
        u0, s0 = a["threads"].get(tid, (name, (0, 0)))[1]
        du, ds = u1 - u0, s1 - s0
        live_user += du
        live_system += ds
        pu, ps = by_name.get(name, (0, 0))
        by_name[name] = (pu + du, ps + ds)
    # The kernel splits each thread's runtime into user and system apart
    # from the process's (cputime_adjust): a tick or two of rounding, not
    # negative time.
    by_name["exited"] = (max(0, user - live_user),
                         max(0, system - live_system))
    return {
        "seconds": seconds,
        "cpu": pct(user + system),
        "user": pct(user),
        "system": pct(system),
        "threads": {n: (pct(u), pct(s)) for n, (u, s) in by_name.items()
                    if u or s},
    }


def measure(pid, window, check=None, leave_out="ring-consumer"):
    """Samples `pid` over `window` seconds, with the (user, system) ticks
    of each second in r["series"], those of the thread named `leave_out`
    left out (its work follows the host's events, not the periodic jobs),
    calling check() every second so that a deadline can abort."""
    a = sample(pid)
    left_out = ["/proc/%d/task/%d/stat" % (pid, tid)
                for tid, (name, _) in a["threads"].items()
                if name == leave_out]

    def reading():
        now = _times("/proc/%d/stat" % pid)
        if now is None:
            raise RuntimeError("process %d is gone" % pid)
        u, s = now
        for path in left_out:
            t = _times(path) or (0, 0)
            u, s = u - t[0], s - t[1]
        return u, s

    end = a["t"] + window
    series = []
    last = reading()
    while time.monotonic() < end:
        if check:
            check()
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        now = reading()
        series.append((now[0] - last[0], now[1] - last[1]))
        last = now
    r = between(a, sample(pid))
    r["series"] = series
    return r


def bursts(series, min_ticks=3):
    """The periodic jobs a per-second (user, system) tick series shows:
    runs of seconds above the median second by at least min_ticks and by
    a quarter of the largest excess. Returns a list of (user, system)
    seconds of CPU above the median, one per burst, or None when no job
    stands out of the tick resolution (a dump of 10k sockets can hide in
    one or two ticks)."""
    if not series:
        return None
    totals = [u + s for u, s in series]
    base_u = sorted(u for u, _ in series)[len(series) // 2]
    base_s = sorted(s for _, s in series)[len(series) // 2]
    base = base_u + base_s
    peak = max(totals) - base
    if peak < min_ticks:
        return None
    limit = base + max(min_ticks, peak / 4)
    out, inside = [], False
    for (u, s), t in zip(series, totals):
        if t >= limit:
            if not inside:
                out.append([0.0, 0.0])
            out[-1][0] += (u - base_u) / CLK_TCK
            out[-1][1] += (s - base_s) / CLK_TCK
        inside = t >= limit
    return [tuple(b) for b in out]


def describe(r):
    """One line: total (user + system) and the threads, largest first."""
    threads = sorted(r["threads"].items(), key=lambda kv: -sum(kv[1]))
    return "%.3f %% of a core (user %.3f, system %.3f) over %.0f s; %s" % (
        r["cpu"], r["user"], r["system"], r["seconds"],
        ", ".join("%s %.3f/%.3f" % (n, u, s) for n, (u, s) in threads))
