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
