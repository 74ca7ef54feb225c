/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conntrack.h"
#include "macro.h"

static bool has_funcs(const struct btf *btf) {
	return btf__find_by_name_kind(btf, "bpf_skb_ct_lookup", BTF_KIND_FUNC) > 0 &&
	       btf__find_by_name_kind(btf, "bpf_ct_release", BTF_KIND_FUNC) > 0;
}

int ct_kfunc_probe(char **ret_why) {
	struct btf *vmlinux, *mod;
	bool found;
	int r;

	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		r = negative_errno();
		return asprintf(ret_why, "no kernel BTF (%s)", strerror(-r)) < 0 ? -ENOMEM : 0;
	}
	found = has_funcs(vmlinux);
	if (!found) {
		/* nf_conntrack built as a module: its own BTF, once loaded. */
		mod = btf__load_module_btf("nf_conntrack", vmlinux);
		if (mod) {
			found = has_funcs(mod);
			btf__free(mod);
		} else {
			btf__free(vmlinux);
			return asprintf(ret_why, "nf_conntrack was not loaded when netbumpd started (restart netbumpd "
					"after it)") < 0 ? -ENOMEM : 0;
		}
	}
	btf__free(vmlinux);
	if (found)
		return 1;
	return asprintf(ret_why, "the kernel has no bpf_skb_ct_lookup kfunc (kernel 6.0, nf_conntrack with BTF)") < 0
		       ? -ENOMEM
		       : 0;
}

bool ct_present(void) {
	/* Per network namespace, there once nf_conntrack is loaded. */
	return access("/proc/sys/net/netfilter/nf_conntrack_max", F_OK) == 0;
}
