/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdbool.h>
#include <string.h>

#include "unshaped.h"

static const char *str(json_object *o, const char *key) {
	json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

unsigned print_rule_unshaped(FILE *f, const char *prefix, json_object *rule) {
	const char *target = str(rule, "target") ?: "?", *waiting = str(rule, "waiting");
	json_object *paths = NULL;
	unsigned n = 0;

	if (waiting) {
		fprintf(f, "%s%s: not limited now: %s\n", prefix, target, waiting);
		n++;
	}
	if (!json_object_object_get_ex(rule, "paths", &paths) || !json_object_is_type(paths, json_type_array))
		return n;
	for (size_t k = 0; k < json_object_array_length(paths); k++) {
		json_object *p = json_object_array_get_idx(paths, k), *shaped = NULL;
		const char *iface = str(p, "interface"), *ns = str(p, "namespace");

		if (json_object_object_get_ex(p, "shaped", &shaped) && json_object_get_boolean(shaped))
			continue;
		fprintf(f, "%s%s: traffic through %s %s is not shaped: %s\n", prefix, target,
			iface ? "interface" : "network namespace", iface ?: ns ?: "?", str(p, "reason") ?: "no reason given");
		n++;
	}
	return n;
}

unsigned print_rules_unshaped(FILE *f, const char *prefix, json_object *rules) {
	unsigned n = 0;

	if (!rules || !json_object_is_type(rules, json_type_array))
		return 0;
	for (size_t k = 0; k < json_object_array_length(rules); k++)
		n += print_rule_unshaped(f, prefix, json_object_array_get_idx(rules, k));
	return n;
}

unsigned print_rules_named(FILE *f, json_object *rules) {
	unsigned n = 0;

	if (!rules || !json_object_is_type(rules, json_type_array))
		return 0;
	for (size_t k = 0; k < json_object_array_length(rules); k++) {
		json_object *r = json_object_array_get_idx(rules, k), *c = NULL;
		const char *target = str(r, "target"), *name, *id, *rt;

		if (!target || strncmp(target, "container:", 10) != 0 || !json_object_object_get_ex(r, "container", &c))
			continue;
		name = str(c, "name");
		id = str(c, "id");
		rt = str(c, "runtime");
		/* Named by its name already: nothing to add. */
		if (!id || (name && strcmp(strchr(target, ':') + 1, name) == 0))
			continue;
		fprintf(f, "%s is %s container %s (%.12s)\n", target, rt ?: "?", name ?: "without a name", id);
		n++;
	}
	return n;
}
