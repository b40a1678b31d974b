"""Run inside a test namespace: leaves `count` TIME_WAIT sockets on
127.0.0.1 and kills `kill` of them with an in-window RST from their peer
(RFC 1337's "TIME_WAIT assassination", which Linux honours while
net.ipv4.tcp_rfc1337 is 0). The kernel drops the timewait socket without
any tracepoint, so nothing tells tcpstated: only the kernel's own totals
and dumps show it. Prints one JSON line: the ports of the sockets killed
and kept.

The RST must carry the sequence number the timewait socket expects next
(the server's FIN + 1): read from the server socket through TCP_REPAIR
(CAP_NET_ADMIN in the namespace) before it closes.
"""

import json
import socket
import struct
import sys
import time

TCP_REPAIR = 19
TCP_REPAIR_QUEUE = 20
TCP_QUEUE_SEQ = 21
TCP_SEND_QUEUE = 2


def send_seq(sock):
    """The next sequence number the socket will send (its FIN's)."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
        raw = sock.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4)
        return struct.unpack("I", raw)[0]
    finally:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def send_rst(sport, dport, seq):
    """An RST from 127.0.0.1:sport to 127.0.0.1:dport (the kernel adds the
    IP header)."""
    src = dst = socket.inet_aton("127.0.0.1")
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x04,
                         0, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, socket.IPPROTO_TCP,
                         len(header))
    header = header[:16] + struct.pack("!H", checksum(pseudo + header)) + \
        header[18:]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    try:
        raw.sendto(header, ("127.0.0.1", 0))
    finally:
        raw.close()


if __name__ == "__main__":
    count, kill = int(sys.argv[1]), int(sys.argv[2])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(count)
    port = listener.getsockname()[1]
    pairs = []
    for _ in range(count):
        client = socket.create_connection(("127.0.0.1", port))
        server, _ = listener.accept()
        pairs.append((client.getsockname()[1], client, server,
                      send_seq(server)))
    listener.close()
    for _, client, server, _ in pairs:
        client.close()  # the client closes first: it waits in TIME_WAIT
        server.close()
    time.sleep(0.2)  # the FINs cross loopback
    killed = []
    for cport, _, _, seq in pairs[:kill]:
        send_rst(port, cport, (seq + 1) & 0xFFFFFFFF)  # after the FIN
        killed.append(cport)
    print(json.dumps({"port": port, "killed": killed,
                      "kept": [p[0] for p in pairs[kill:]]}))
