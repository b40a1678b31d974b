"""One-shot connection scenarios for test_outcomes.py, run inside a test
namespace: `outcome_workload.py SCENARIO PORT COUNT [SECONDS]`. Prints one
JSON line with what the application saw (the errno of every connect), the
ground truth the metrics are compared with. Every loop is bounded in count
and in time.
"""

import errno
import json
import select
import socket
import struct
import sys
import time

HOST = "127.0.0.1"


def so_error(s):
    return s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)


def start_connect(port):
    s = socket.socket()
    s.setblocking(False)
    code = s.connect_ex((HOST, port))
    if code not in (0, errno.EINPROGRESS):
        s.close()
        raise OSError(code, "connect")
    return s


TCP_SYN_SENT = 2
TCP_CLOSE = 7


def tcp_state(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def finish(sockets, budget):
    """Waits until the kernel has closed every connecting socket (or the
    budget ends), then returns their errno names ('pending' for one still
    open). SO_ERROR is read only after the close: reading it clears the
    socket's error, which the close event reports."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        if all(tcp_state(s) == TCP_CLOSE for s in sockets):
            break
        time.sleep(0.05)
    return [errno.errorcode.get(so_error(s), "ok")
            if tcp_state(s) == TCP_CLOSE else "pending" for s in sockets]


def refused(port, count, seconds):
    """count connects to a closed port, spread over `seconds`."""
    seen = []
    for i in range(count):
        s = socket.socket()
        s.settimeout(5)
        try:
            s.connect((HOST, port))
            seen.append("ok")
        except OSError as e:
            seen.append(errno.errorcode.get(e.errno, str(e.errno)))
        finally:
            s.close()
        if seconds:
            time.sleep(seconds / count)
    return seen


def dropped(port, count, budget):
    """count connects whose SYNs are dropped (or rejected): they end on
    their own (timeout, ICMP), within `budget` seconds (default 20)."""
    sockets = [start_connect(port) for _ in range(count)]
    try:
        return finish(sockets, budget or 20.0)
    finally:
        for s in sockets:
            s.close()


def aborted(port, count, _):
    """count connects closed by the application while in SYN_SENT (their
    SYNs are dropped). Reports the ss-visible SYN-SENT count before."""
    sockets = [start_connect(port) for _ in range(count)]
    time.sleep(0.2)
    still = sum(1 for s in sockets if tcp_state(s) == TCP_SYN_SENT)
    for s in sockets:
        s.close()
    return ["in_syn_sent"] * still


def gave_up(port, count, seconds, read_error=False):
    """count connects the application abandons after its own connect
    timeout of `seconds`, closing each in SYN_SENT. With read_error it
    first reads SO_ERROR, as many applications do, and reports what it
    read: that also clears a soft error the kernel kept (sk_err_soft).
    Reports "<errno or no_error> in_syn_sent" for each socket."""
    sockets = [start_connect(port) for _ in range(count)]
    try:
        select.select([], sockets, [], seconds)
        seen = []
        for s in sockets:
            code = so_error(s) if read_error else 0
            seen.append("%s %s" % (
                errno.errorcode.get(code, str(code)) if code else "no_error",
                "in_syn_sent" if tcp_state(s) == TCP_SYN_SENT else "closed"))
        return seen
    finally:
        for s in sockets:
            s.close()


def gave_up_after_reading(port, count, seconds):
    return gave_up(port, count, seconds, read_error=True)


def served(port, count, _):
    """count connections to a listener of ours, closed gracefully."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(count + 8)
    seen = []
    for _ in range(count):
        c = socket.create_connection((HOST, port), timeout=5)
        a, _ = listener.accept()
        seen.append("ok")
        c.close()
        a.close()
    listener.close()
    return seen


def pairs(port, count):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, port))
    listener.listen(count + 8)
    out = []
    for _ in range(count):
        c = socket.create_connection((HOST, port), timeout=5)
        a, _ = listener.accept()
        out.append((c, a))
    return listener, out


LINGER_0 = struct.pack("ii", 1, 0)


def linger(port, count, seconds):
    """The client aborts each connection with SO_LINGER 0: it sends a RST,
    the server receives it in ESTABLISHED."""
    listener, conns = pairs(port, count)
    seen = []
    for c, a in conns:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
        c.close()
        try:
            a.settimeout(5)
            a.recv(1)
            seen.append("eof")
        except OSError as e:
            seen.append(errno.errorcode.get(e.errno, str(e.errno)))
        a.close()
        if seconds:
            time.sleep(seconds / count)
    listener.close()
    return seen


def unread(port, count, _):
    """The server closes with the client's request unread: it sends a RST
    (TCPAbortOnClose), the client receives it in ESTABLISHED."""
    listener, conns = pairs(port, count)
    seen = []
    for c, a in conns:
        c.sendall(b"request")
        deadline = time.monotonic() + 5
        # The data must be in the server's receive queue before close().
        while time.monotonic() < deadline:
            r, _, _ = select.select([a], [], [], 0.1)
            if r:
                break
        a.close()
        try:
            c.settimeout(5)
            c.recv(1)
            seen.append("eof")
        except OSError as e:
            seen.append(errno.errorcode.get(e.errno, str(e.errno)))
        c.close()
    listener.close()
    return seen


SCENARIOS = {
    "refused": refused,
    "dropped": dropped,
    "aborted": aborted,
    "gave_up": gave_up,
    "gave_up_after_reading": gave_up_after_reading,
    "served": served,
    "linger": linger,
    "unread": unread,
}


def main():
    scenario, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    extra = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    count = max(0, min(count, 1000))
    print(json.dumps(SCENARIOS[scenario](port, count, extra)))


if __name__ == "__main__":
    main()
