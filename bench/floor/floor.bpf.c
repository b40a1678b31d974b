// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor: what any eBPF tool pays to be on tcpstated's path at all. The
 * same tp_btf tracepoints as bpf/tcpstated.bpf.c, each with an empty body
 * that only bumps a per-CPU counter (so the run is not optimised away and
 * the loader can say how many runs it saw). storm.py's "floor" mode loads it
 * with tcpstated-floor; what tcpstated costs above it is what it can still
 * save.
 */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} runs SEC(".maps");

static __always_inline int count_run(void)
{
	__u32 zero = 0;
	__u64 *value = bpf_map_lookup_elem(&runs, &zero);

	if (value)
		*value += 1;
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(floor_set_state) { return count_run(); }

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(floor_recv_reset) { return count_run(); }

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(floor_send_reset) { return count_run(); }

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(floor_retrans) { return count_run(); }

SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(floor_synack) { return count_run(); }
