/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conntrack.c: whether the BPF programs can look connections up in the
 * conntrack table (bpf_skb_ct_lookup, a kfunc of nf_conntrack), which they
 * need for the traffic of a namespace behind NAT (masquerade): see
 * "Other network namespaces" in netbump(7) and bpf/netns.bpf.h.
 */
#pragma once

#include <stdbool.h>

/* 1 when the kernel offers bpf_skb_ct_lookup and bpf_ct_release to tc
 * programs (vmlinux or the nf_conntrack module's BTF), 0 when not, with
 * *ret_why saying why (the caller frees it); -errno on other errors. */
int ct_kfunc_probe(char **ret_why);

/* Connection tracking runs in this network namespace (nf_conntrack is
 * loaded): traffic may be masqueraded here. */
bool ct_present(void);
