"""Socket workload that runs inside a test namespace (ip netns exec).

Reads one command per line on stdin, answers one line on stdout ("ok ..."
or "error ..."). Sockets are kept by name so a test can hold them in a given
state while it compares tcpstated with `ss`. Every loop is bounded by its
count argument and every blocking call by a timeout. Traffic only goes to
this namespace's loopback.
"""

import errno
import socket
import struct
import sys
import time

TIMEOUT = 10.0
MAX_COUNT = 100000
socks = {}


def family_of(name):
    return socket.AF_INET6 if name == "6" else socket.AF_INET


def loopback(family):
    return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def count_arg(text):
    n = int(text)
    if not 0 <= n <= MAX_COUNT:
        raise ValueError("count out of range")
    return n


def new_socket(family):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    return s


def cmd_listen(name, fam, port, backlog="128"):
    family = family_of(fam)
    s = new_socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((loopback(family), int(port)))
    s.listen(int(backlog))
    socks[name] = s
    return str(s.getsockname()[1])


def cmd_connect(name, fam, port):
    family = family_of(fam)
    s = new_socket(family)
    try:
        s.connect((loopback(family), int(port)))
    except OSError as e:
        s.close()
        return "errno " + errno.errorcode.get(e.errno, str(e.errno))
    socks[name] = s
    return str(s.getsockname()[1])


def cmd_accept(name, listener):
    conn, _ = socks[listener].accept()
    conn.settimeout(TIMEOUT)
    socks[name] = conn
    return str(conn.getpeername()[1])


def cmd_connectmany(prefix, fam, port, count):
    """Connects up to count sockets; stops at the first failure and reports
    how many succeeded and the errno of the failure."""
    n = count_arg(count)
    for i in range(n):
        r = cmd_connect("%s%d" % (prefix, i), fam, port)
        if r.startswith("errno"):
            return "%d %s" % (i, r.split()[1])
    return "%d" % n


def cmd_acceptmany(prefix, listener, count):
    n = count_arg(count)
    for i in range(n):
        cmd_accept("%s%d" % (prefix, i), listener)
    return str(n)


def cmd_close(name):
    socks.pop(name).close()
    return "closed"


def cmd_closemany(prefix, count):
    n = count_arg(count)
    for i in range(n):
        socks.pop("%s%d" % (prefix, i)).close()
    return str(n)


def cmd_shutdown(name):
    socks[name].shutdown(socket.SHUT_WR)
    return "shutdown"


def cmd_usertimeout(name, ms):
    """TCP_USER_TIMEOUT: how long sent data (or a FIN) may stay unacked
    before the kernel gives up on the connection (tcp_write_err)."""
    socks[name].setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT,
                           int(ms))
    return "set"


def cmd_linger2(name, seconds):
    """TCP_LINGER2: how long the socket, once orphaned in FIN_WAIT2, waits
    for the peer's FIN (negative: not at all)."""
    socks[name].setsockopt(socket.IPPROTO_TCP, socket.TCP_LINGER2,
                           int(seconds))
    return "set"


def cmd_abort(name):
    """close() with SO_LINGER 0: the kernel sends a RST."""
    s = socks.pop(name)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return "aborted"


def cmd_abortmany(prefix, count):
    n = count_arg(count)
    for i in range(n):
        cmd_abort("%s%d" % (prefix, i))
    return str(n)


def cmd_waiteof(name):
    """Blocks until the peer's FIN has arrived (recv returns b'')."""
    s = socks[name]
    while True:
        data = s.recv(4096)
        if not data:
            return "eof"


def cmd_selfconnect(name, port):
    """Connect to self: simultaneous open (2->3->1) on one socket."""
    s = new_socket(socket.AF_INET)
    s.bind(("127.0.0.1", int(port)))
    s.connect(("127.0.0.1", int(port)))
    socks[name] = s
    return str(port)


def cmd_lifecycles(fam, listener_name, count, closer):
    """count full connections through one listener: connect, accept, one
    byte each way, then the `closer` side (client|server) closes first and
    the other side closes after seeing EOF."""
    n = count_arg(count)
    listener = socks[listener_name]
    port = listener.getsockname()[1]
    family = family_of(fam)
    for _ in range(n):
        c = new_socket(family)
        c.connect((loopback(family), port))
        s, _ = listener.accept()
        s.settimeout(TIMEOUT)
        c.sendall(b"q")
        s.recv(1)
        s.sendall(b"a")
        c.recv(1)
        first, second = (c, s) if closer == "client" else (s, c)
        first.close()
        while second.recv(4096):
            pass
        second.close()
    return str(n)


def cmd_sleep(seconds):
    time.sleep(min(float(seconds), 60))
    return "slept"



# ---- Detector scenarios (test_detectors.py) -----------------------------

MAX_BURST_SECONDS = 5.0


def cmd_synburst(prefix, fam, port, count, budget):
    """Non-blocking connects to `port`, at most `count` of them and for at
    most `budget` seconds (capped at MAX_BURST_SECONDS), kept as prefix0..;
    returns how many were started. The sockets stay in SYN_SENT while their
    handshake cannot complete."""
    n = count_arg(count)
    limit = time.monotonic() + min(float(budget), MAX_BURST_SECONDS)
    family = family_of(fam)
    started = 0
    for i in range(n):
        if time.monotonic() > limit:
            break
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((loopback(family), int(port)))
        if rc not in (0, errno.EINPROGRESS):
            s.close()
            return "%d errno %s" % (started, errno.errorcode.get(rc, rc))
        socks["%s%d" % (prefix, i)] = s
        started += 1
    return str(started)


def cmd_closeprefix(prefix):
    """Closes every kept socket whose name starts with prefix."""
    names = [k for k in socks if k.startswith(prefix)]
    for k in names:
        socks.pop(k).close()
    return str(len(names))


def cmd_churn(listener_name, count, rate, max_seconds):
    """Short connections through one listener, the client closing first (so
    each leaves a client TIME_WAIT holding its ephemeral port), paced at
    `rate` per second, until `count` were made, `max_seconds` passed (capped
    at 60) or connect() failed. Answers: made, wall-clock time (time.time())
    of the first failure or "none", and its errno name or "none"."""
    n = count_arg(count)
    pace = float(rate)
    listener = socks[listener_name]
    port = listener.getsockname()[1]
    family = listener.family
    start = time.monotonic()
    limit = start + min(float(max_seconds), 60.0)
    made = 0
    for i in range(n):
        now = time.monotonic()
        if now > limit:
            break
        due = start + i / pace
        if due > now:
            time.sleep(min(due - now, limit - now))
        c = new_socket(family)
        try:
            c.connect((loopback(family), port))
        except OSError as e:
            failed_at = time.time()
            c.close()
            return "%d %.6f %s" % (made, failed_at,
                                   errno.errorcode.get(e.errno, e.errno))
        s, _ = listener.accept()
        s.settimeout(TIMEOUT)
        c.close()
        while s.recv(4096):
            pass
        s.close()
        made += 1
    return "%d none none" % made


def cmd_pid():
    import os
    return str(os.getpid())


# ---- Owners (test_between_reconciles.py) ---------------------------------

PR_SET_NAME = 15


def set_thread_name(name):
    """Names the calling thread (its /proc/<pid>/task/<tid>/comm); on the
    main thread that is the process's name too."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def cmd_comm(name):
    set_thread_name(name)
    return name


def cmd_bind(name, fam, port):
    """A socket bound (SO_REUSEADDR) but not listening: another one may
    still bind the same port, and whichever listens second fails."""
    family = family_of(fam)
    s = new_socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((loopback(family), int(port)))
    socks[name] = s
    return str(s.getsockname()[1])


def cmd_listenbound(name):
    try:
        socks[name].listen(128)
    except OSError as e:
        return "errno " + errno.errorcode.get(e.errno, str(e.errno))
    return str(socks[name].getsockname()[1])


def cmd_inthread(thread_name, command, *args):
    """Runs another command in a new thread named `thread_name`, so the
    kernel sees a thread whose name is not the process's."""
    import threading
    result = {}

    def run():
        try:
            set_thread_name(thread_name)
            result["reply"] = COMMANDS[command](*args)
        except Exception as e:  # reported by the caller's thread
            result["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(TIMEOUT + 5)
    if t.is_alive():
        raise TimeoutError("thread did not finish")
    if "error" in result:
        raise result["error"]
    return result["reply"]


# ---- Failure modes (test_failure_modes.py) -------------------------------

MAX_STORM_SECONDS = 20.0


def cmd_storm(listener_name, count, max_seconds, rst_percent):
    """A connection storm through one listener: connect / accept / close
    cycles until `count` connections were made or `max_seconds` passed
    (capped at MAX_STORM_SECONDS). `rst_percent` of them, spread evenly, are
    aborted by the client (SO_LINGER 0: the client goes ESTABLISHED -> CLOSE
    and sends a RST, the server goes ESTABLISHED -> CLOSE when it arrives;
    the server waits for it before closing, so no FIN is ever sent); the
    others close gracefully, client first (the server waits for the FIN
    before closing: the client ends in TIME_WAIT). Answers: connect() calls
    made, RST closes, graceful closes, errors, seconds."""
    n = count_arg(count)
    pct = int(rst_percent)
    if not 0 <= pct <= 100:
        raise ValueError("rst_percent out of range")
    listener = socks[listener_name]
    family = listener.family
    address = (loopback(family), listener.getsockname()[1])
    linger = struct.pack("ii", 1, 0)
    start = time.monotonic()
    limit = start + min(float(max_seconds), MAX_STORM_SECONDS)
    connects = rst = graceful = errors = 0
    for i in range(n):
        if time.monotonic() > limit:
            break
        c = socket.socket(family, socket.SOCK_STREAM)
        c.settimeout(TIMEOUT)
        connects += 1
        try:
            c.connect(address)
            s, _ = listener.accept()
        except OSError:
            c.close()
            errors += 1
            if errors > 100:
                break
            continue
        s.settimeout(TIMEOUT)
        try:
            if pct and (i * pct) % 100 + pct >= 100:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                c.close()
                try:
                    s.recv(1)
                except ConnectionResetError:
                    pass
                rst += 1
            else:
                c.close()
                s.recv(1)
                graceful += 1
        except OSError:
            errors += 1
        finally:
            c.close()
            s.close()
        if errors > 100:
            break
    return "%d %d %d %d %.3f" % (connects, rst, graceful, errors,
                                 time.monotonic() - start)


def cmd_nofile(count):
    """Raises the soft RLIMIT_NOFILE to at least count (at most the hard
    limit); answers the new soft limit."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(max(soft, int(count)), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return str(want)


def cmd_leakports(prefix, fam, count):
    """A "port scan" of leaks: count listeners on distinct ports (chosen by
    the kernel), each with one accepted connection whose client closed and
    whose server never closes: count CLOSE_WAIT server sockets on count
    different listening ports. Kept as <prefix>l<i> (listeners) and
    <prefix>s<i> (CLOSE_WAIT sockets); the clients are closed (orphaned
    FIN_WAIT2). Answers the count."""
    n = count_arg(count)
    family = family_of(fam)
    for i in range(n):
        port = cmd_listen("%sl%d" % (prefix, i), fam, 0)
        c = new_socket(family)
        c.connect((loopback(family), int(port)))
        cmd_accept("%ss%d" % (prefix, i), "%sl%d" % (prefix, i))
        c.close()
    for i in range(n):
        cmd_waiteof("%ss%d" % (prefix, i))
    return str(n)


# ---- Peer liveness (test_peer_liveness.py) ----

def cmd_keepalive(name, idle, interval, count):
    """SO_KEEPALIVE with TCP_KEEPIDLE/KEEPINTVL (seconds) and KEEPCNT."""
    s = socks[name]
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(idle))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, int(interval))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, int(count))
    return "set"


def cmd_send(name, nbytes):
    """Queues nbytes (at most 64 KiB) without waiting for them to leave."""
    n = int(nbytes)
    if not 0 < n <= 65536:
        raise ValueError("nbytes out of range")
    return str(socks[name].send(b"x" * n, socket.MSG_DONTWAIT))


def cmd_recv(name):
    """Reads what has arrived, without blocking."""
    try:
        return str(len(socks[name].recv(65536, socket.MSG_DONTWAIT)))
    except BlockingIOError:
        return "0"


COMMANDS = {name[4:]: fn for name, fn in globals().items()
            if name.startswith("cmd_")}


def main():
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            reply = "ok " + COMMANDS[words[0]](*words[1:])
        except Exception as e:  # report, keep serving
            reply = "error %s: %s" % (type(e).__name__, e)
        sys.stdout.write(reply + "\n")
        sys.stdout.flush()
    for s in socks.values():
        s.close()


if __name__ == "__main__":
    main()
