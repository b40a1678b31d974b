#!/usr/bin/env python3
"""System time of each kind of sock_diag dump tcpstated asks for, in the
current network namespace, two ways: one SOCK_DIAG_BY_FAMILY dump per
address family (two walks of the kernel's established hash) and one
TCPDIAG_GETSOCK dump (one walk, both families). Rounds alternate the order;
medians. Rows are counted, not decoded, so the figure is the kernel's side
(walk, fill, copy to user space). Run it inside the namespace that holds
the sockets, e.g. while scale.py holds a million:

    ip netns exec tcpstated-test-scale-<pid> tests/load/dump_cost.py --rounds 2

docs/performance.md, section 20. Root (sock_diag of every socket needs no
privilege, but scale.py's namespace does). Python standard library only.
"""

import argparse
import resource
import socket
import statistics
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
TCPDIAG_GETSOCK = 18
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
ALL_STATES = (1 << 13) - 2  # kAllStatesMask
ESTABLISHED, FIN_WAIT2, LISTEN = 1 << 1, 1 << 4, 1 << 10
INFO = 1 << 1  # 1 << (INET_DIAG_INFO - 1)

# (name, state mask, extensions): the dumps of sock_diag.h's callers.
KINDS = [
    ("every state, no tcp_info (full dump)", ALL_STATES, 0),
    ("every state, tcp_info (safety dump serving the idle judgment)",
     ALL_STATES, INFO),
    ("ESTABLISHED + LISTEN, tcp_info", ESTABLISHED | LISTEN, INFO),
    ("ESTABLISHED + LISTEN, no tcp_info (dead peers)", ESTABLISHED | LISTEN,
     0),
    ("FIN_WAIT2 + LISTEN, tcp_info", FIN_WAIT2 | LISTEN, INFO),
]


def exchange(sock, mtype, body, seq):
    """Sends one dump request; returns the number of rows in its reply."""
    flags = NLM_F_REQUEST | NLM_F_DUMP
    sock.send(struct.pack("=LHHLL", 16 + len(body), mtype, flags, seq, 0) +
              body)
    rows = 0
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=LH", data, offset)
            if kind == NLMSG_DONE:
                return rows
            if kind == NLMSG_ERROR:
                error = struct.unpack_from("=i", data, offset + 16)[0]
                raise RuntimeError("dump refused: errno %d" % -error)
            rows += 1
            offset += (length + 3) & ~3


def dump(one_walk, mask, ext, seq):
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM,
                         NETLINK_SOCK_DIAG)
    try:
        sock.bind((0, 0))
        if one_walk:
            # inet_diag_req: family, src_len, dst_len, ext, id (48 bytes),
            # states, dbs.
            body = (struct.pack("=BBBB", socket.AF_UNSPEC, 0, 0, ext) +
                    bytes(48) + struct.pack("=LL", mask, 0))
            return exchange(sock, TCPDIAG_GETSOCK, body, seq)
        rows = 0
        for family in (socket.AF_INET, socket.AF_INET6):
            # inet_diag_req_v2: family, protocol, ext, pad, states, id.
            body = struct.pack("=BBBBL", family, socket.IPPROTO_TCP, ext, 0,
                               mask) + bytes(48)
            rows += exchange(sock, SOCK_DIAG_BY_FAMILY, body, seq)
        return rows
    finally:
        sock.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    times = {}
    seq = 0
    for r in range(args.rounds):
        for name, mask, ext in KINDS:
            for one_walk in ((False, True) if r % 2 == 0 else (True, False)):
                seq += 1
                before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
                rows = dump(one_walk, mask, ext, seq)
                after = resource.getrusage(resource.RUSAGE_SELF).ru_stime
                times.setdefault((name, one_walk), []).append(
                    (after - before, rows))
    print("| dump | rows | two walks (system s, median) | one walk |")
    print("|---|---|---|---|")
    for name, _, _ in KINDS:
        two, one = times[(name, False)], times[(name, True)]
        print("| %s | %d | %.3f (%s) | %.3f (%s) |" % (
            name, two[0][1], statistics.median(t for t, _ in two),
            ", ".join("%.2f" % t for t, _ in two),
            statistics.median(t for t, _ in one),
            ", ".join("%.2f" % t for t, _ in one)))


if __name__ == "__main__":
    main()
