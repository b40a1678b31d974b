/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between tcpstated's BPF programs and userspace: one event
 * record, the sources that produce it, and the layout of the in-kernel
 * counters. Plain C with fixed-width types and explicit padding, included by
 * the BPF object and by the daemon (which static_asserts the sizes).
 */
#ifndef TCPSTATED_ABI_H
#define TCPSTATED_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TCPSTATED_COMM_LEN 16

/* Kernel TCP state numbers (include/net/tcp_states.h). */
#define TCPSTATED_TCP_ESTABLISHED 1
#define TCPSTATED_TCP_SYN_SENT 2
#define TCPSTATED_TCP_SYN_RECV 3
#define TCPSTATED_TCP_FIN_WAIT1 4
#define TCPSTATED_TCP_FIN_WAIT2 5
#define TCPSTATED_TCP_TIME_WAIT 6
#define TCPSTATED_TCP_CLOSE 7
#define TCPSTATED_TCP_CLOSE_WAIT 8
#define TCPSTATED_TCP_LAST_ACK 9
#define TCPSTATED_TCP_LISTEN 10
#define TCPSTATED_TCP_CLOSING 11
#define TCPSTATED_TCP_NEW_SYN_RECV 12
#define TCPSTATED_TCP_BOUND_INACTIVE 13

/* Transition counters are a per-CPU array indexed by old * 16 + new. */
#define TCPSTATED_STATE_SLOTS 16
#define TCPSTATED_TRANSITION_SLOTS (TCPSTATED_STATE_SLOTS * TCPSTATED_STATE_SLOTS)

/* Which program produced an event; also the index of the per-CPU loss
 * counters. */
enum tcpstated_source {
	TCPSTATED_SRC_STATE = 0,	  /* sock/inet_sock_set_state */
	TCPSTATED_SRC_RECV_RESET = 1,	  /* tcp/tcp_receive_reset */
	TCPSTATED_SRC_SEND_RESET = 2,	  /* tcp/tcp_send_reset */
	TCPSTATED_SRC_SYNACK_RETRANS = 3, /* tcp/tcp_retransmit_synack */
	TCPSTATED_SRC_SYN_RETRANS = 4,	  /* tcp/tcp_retransmit_skb in SYN_SENT */
	TCPSTATED_SRC_COUNT = 5,
};

/* Event flags. */
enum tcpstated_event_flags {
	/* pid/tgid/comm/cgroup_id describe the socket's owner: the transition
	 * ran in the owner's process (connect, listen, close, shutdown). */
	TCPSTATED_F_PROCESS_CTX = 1 << 0,
	/* The peer's FIN had been received (SOCK_DONE) when the socket
	 * left FIN_WAIT2/CLOSING: a hand-off goes to the TIME_WAIT substate,
	 * otherwise to the FIN_WAIT2 substate aged by tcp_fin_timeout. */
	TCPSTATED_F_PEER_FIN = 1 << 1,
	/* The event's id is a socket cookie (tp_btf) rather than a
	 * per-incarnation id derived from skaddr (classic tracepoint). Before
	 * 6.15 a child's LISTEN->SYN_RECV carries the cookie it copied from
	 * its listener: skaddr, not id, joins it to its next event. */
	TCPSTATED_F_COOKIE = 1 << 2,
	/* IPv6 socket (addresses are 16 bytes); otherwise IPv4 in bytes 0-3. */
	TCPSTATED_F_IPV6 = 1 << 3,
	/* X->CLOSE with sk_err set: tcp_write_err (retransmits or
	 * TCP_USER_TIMEOUT exhausted) or tcp_abort closed the socket, which
	 * tcp_time_wait() never does: no timewait socket was made. From
	 * SYN_SENT, also a soft error the application's close() overtook
	 * (see sk_err). */
	TCPSTATED_F_SOCK_ERR = 1 << 4,
	/* FIN_WAIT2->CLOSE of a socket with TCP_LINGER2 of its own: the long
	 * record's fin_time and fin_timeout are set. */
	TCPSTATED_F_LINGER2 = 1 << 5,
	/* SEND_RESET answering a segment that reached no socket (a closed
	 * port, a port scan, a peer of a connection this host forgot): id
	 * and skaddr are 0, oldstate is CLOSE, sport/dport the segment's
	 * destination (this host's port) and source; no addresses. Only
	 * kernels >= 6.10 fire tcp_send_reset without a socket. */
	TCPSTATED_F_NO_SOCKET = 1 << 6,
};

/*
 * Sent through the ring buffer in one of two sizes, told apart by the
 * record's length:
 *  - short (struct tcpstated_event_head, 56 bytes): an IPv4 event outside
 *    process context, most of a storm's events. With the ring's 8-byte
 *    record header it fills exactly one 64-byte cache line.
 *  - long (struct tcpstated_event): the head, then the 16-byte addresses
 *    (IPv6, or IPv4 in bytes 0-3) and the owner's identity; sent for IPv6
 *    and for events in process context (TCPSTATED_F_PROCESS_CTX).
 * Largest fields first, no implicit padding. The head's fields are spelled
 * once (TCPSTATED_EVENT_HEAD) so that both records share them by name.
 *
 * Adding a field: one that every event needs and that fits 4 bytes goes in
 * the head's `spare` (keep the head at 56 bytes); one that only process
 * context has (e.g. the thread-group leader's comm) goes at the end of the
 * long record; bump TCPSTATED_EVENT_SIZE and the decoder's copy.
 */
#define TCPSTATED_EVENT_HEAD                                                                       \
	__u64 ts_ns;  /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */                                    \
	__u64 id;     /* socket cookie, or per-incarnation id (see flags) */                       \
	__u64 skaddr; /* kernel address of the socket (listener for SYN-ACKs) */                   \
	/* Network namespace cookie: never reused, unlike the inode number, so                     \
	 * a namespace that died and whose inode came back is told apart. 0 on                     \
	 * kernels without net_cookie (before 5.14). */                                            \
	__u64 netns_cookie;                                                                        \
	__u32 netns;	/* network namespace inode */                                              \
	__u16 sport;	/* host byte order */                                                      \
	__u16 dport;	/* host byte order */                                                      \
	__u8 saddr4[4]; /* short record only: IPv4, network byte order */                          \
	__u8 daddr4[4]; /* short record only */                                                    \
	__u8 source;	/* enum tcpstated_source */                                                \
	__u8 oldstate;	/* STATE: old state; resets: socket state */                               \
	__u8 newstate;	/* STATE: new state */                                                     \
	__u8 flags;	/* enum tcpstated_event_flags */                                           \
	/* X->CLOSE: sk_err, an errno (ECONNREFUSED, ETIMEDOUT,                                    \
	 * EHOSTUNREACH, ...) capped at 255; 0 when the close was no error.                        \
	 * SYN_SENT->CLOSE without sk_err: sk_err_soft (an ICMP error kept                         \
	 * as soft, then the application closed the connecting socket). */                         \
	__u8 sk_err;                                                                               \
	__u8 spare[3]; /* zero; room for a small field */

struct tcpstated_event_head {
	TCPSTATED_EVENT_HEAD
};

struct tcpstated_event {
	TCPSTATED_EVENT_HEAD
	__u8 saddr[16];		       /* network byte order; IPv4 in bytes 0-3 */
	__u8 daddr[16];		       /* network byte order */
	__u64 cgroup_id;	       /* only with TCPSTATED_F_PROCESS_CTX */
	__u32 tgid;		       /* only with TCPSTATED_F_PROCESS_CTX */
	__u32 pid;		       /* only with TCPSTATED_F_PROCESS_CTX */
	char comm[TCPSTATED_COMM_LEN]; /* only with TCPSTATED_F_PROCESS_CTX */
	/* Only with TCPSTATED_F_LINGER2: tcp_fin_time() in jiffies (how long
	 * the orphan lives), 0 when linger2 is negative (no timewait socket
	 * is made); and the namespace's tcp_fin_timeout in jiffies, which
	 * userspace knows in seconds: their ratio converts jiffies, since HZ
	 * is in no BTF type and the kernel's config is often not on disk. */
	__u32 fin_time;
	__u32 fin_timeout;
};

#define TCPSTATED_EVENT_HEAD_SIZE 56
#define TCPSTATED_EVENT_SIZE 128

#endif /* TCPSTATED_ABI_H */
