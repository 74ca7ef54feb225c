/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * machine:NAME: a machine systemd-machined knows (systemd-nspawn
 * registers its containers, libvirt and others their machines). machined
 * says which unit the machine runs in (its Unit property: machine-NAME.scope
 * for nspawn); from there the rule is a unit: rule on that unit, its cgroup
 * followed over D-Bus. machined's MachineNew for the name points the rule
 * at the unit of the machine's next start, should it be another.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "kind.h"
#include "log.h"
#include "macro.h"
#include "named.h"
#include "unit.h"

#define MD_DEST "org.freedesktop.machine1"
#define MD_PATH "/org/freedesktop/machine1"
#define MD_MANAGER "org.freedesktop.machine1.Manager"

extern const KindOps kind_unit;

static NamedTarget *named_of(Rule *r) {
	if (!r->named)
		r->named = calloc(1, sizeof(NamedTarget));
	return r->named;
}

void named_done(Rule *r) {
	if (!r->named)
		return;
	r->named->watch = sd_bus_slot_unref(r->named->watch);
	container_done(&r->named->c);
	free(r->named->cgroup);
	free(r->named->why);
	free(r->named);
	r->named = NULL;
}

/* The unit machined says the machine runs in. -ENXIO: machined does not
 * know the name; -EHOSTDOWN: machined is not there. */
static int machine_unit(Manager *m, const char *name, char **ret) {
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	r = sd_bus_call_method(m->bus, MD_DEST, MD_PATH, MD_MANAGER, "GetMachine", &error, &reply, "s", name);
	if (r < 0) {
		if (sd_bus_error_has_name(&error, "org.freedesktop.machine1.NoSuchMachine"))
			r = -ENXIO;
		else if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
			r = -EHOSTDOWN;
		sd_bus_error_free(&error);
		return r;
	}
	r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		r = sd_bus_get_property_string(m->bus, MD_DEST, path, "org.freedesktop.machine1.Machine", "Unit", &error,
					       ret);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	return r;
}

/* Points the rule at the machine's unit now: the same unit, its cgroup
 * again; another one, that unit from now on. */
static int machine_sync(Manager *m, Rule *rule) {
	_cleanup_free_ char *unit = NULL;
	const char *why = NULL;
	int r;

	r = machine_unit(m, rule->target.name, &unit);
	if (r < 0)
		/* Gone: its unit's cgroup goes with it, which the unit's watch
		 * sees; the rule waits for the name to come back. */
		return unit_rule_sync(m, rule);
	if (rule->target.unit && streq(rule->target.unit, unit))
		return unit_rule_sync(m, rule);
	unit_rule_done(rule);
	free(rule->target.unit);
	rule->target.unit = TAKE_PTR(unit);
	r = unit_rule_prepare(m, rule, &why);
	if (r < 0)
		log_struct(LOG_WARNING, RULE_FIELDS(rule), "%s: cannot follow its unit %s: %s: %s", rule->name,
			   rule->target.unit, why ?: "failed", strerror(-r));
	return r;
}

static int machine_signal(sd_bus_message *msg, void *userdata, sd_bus_error *ret_error) {
	Rule *rule = userdata;

	(void)machine_sync(rule->manager, rule);
	return 0;
}

static int machine_resolve(Manager *m, Rule *rule, const char **ret_error, char **ret_reason) {
	_cleanup_free_ char *unit = NULL, *match = NULL;
	const char *why = NULL;
	NamedTarget *n = named_of(rule);
	int r;

	if (!n)
		return -ENOMEM;
	r = manager_bus_open(m);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
				 "%s: cannot reach systemd over D-Bus (%s): machine: targets need systemd-machined",
				 rule->name, strerror(-r));
	r = machine_unit(m, rule->target.name, &unit);
	/* A rule granted before a crash waits for its machine, and for
	 * machined (started later in a boot). */
	if (r == -EHOSTDOWN && m->restoring)
		r = -ENXIO;
	if (r == -EHOSTDOWN)
		return rule_fail(ret_error, ret_reason, E_FAILED, r,
				 "%s: systemd-machined is not running here: machine: names what it knows (systemd-nspawn "
				 "containers, registered machines); name a container with container:NAME, a cgroup "
				 "with cgroup:/PATH",
				 rule->name);
	if (r == -ENXIO && !m->restoring)
		return rule_fail(ret_error, ret_reason, E_NOTFOUND, r,
				 "%s: no machine of that name is registered with systemd-machined (machinectl list "
				 "shows those that are)",
				 rule->name);
	if (r < 0 && r != -ENXIO)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: cannot ask systemd-machined: %s", rule->name,
				 strerror(-r));

	/* Its name's comings and goings; the name is checked by target.c
	 * (letters, digits, "-_."), safe inside the quotes. */
	if (asprintf(&match,
		     "type='signal',sender='" MD_DEST "',path='" MD_PATH "',interface='" MD_MANAGER "',arg0='%s'",
		     rule->target.name) < 0)
		return -ENOMEM;
	r = sd_bus_add_match(m->bus, &n->watch, match, machine_signal, rule);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: cannot watch systemd-machined: %s", rule->name,
				 strerror(-r));
	if (!unit) {
		rule->key = 0;
		return 0;
	}
	free(rule->target.unit);
	rule->target.unit = TAKE_PTR(unit);
	r = unit_rule_prepare(m, rule, &why);
	if (r < 0)
		return rule_fail(ret_error, ret_reason, E_FAILED, r, "%s: its unit %s: %s: %s", rule->name,
				 rule->target.unit, why ?: "failed", strerror(-r));
	return 0;
}

static int machine_refresh(Manager *m, Rule *rule) {
	return m->bus ? machine_sync(m, rule) : 0;
}

/* The rest is a unit rule's. */
/* rule_follow_cgroup() keeps nest_path as the path it followed: looking
 * it up again by id (unit:'s way) needs CAP_DAC_READ_SEARCH, which a
 * netbumpd in a container may not have. */
static void machine_place(Manager *m, Rule *r) {
	if (!r->nest_path) {
		kind_unit.place(m, r);
		return;
	}
	r->nest_uid = cgroup_delegate(m, r->nest_path);
}
static int machine_owner(Manager *m, Rule *r, uid_t *ret, const char **ret_error, char **ret_reason) {
	return kind_unit.owner(m, r, ret, ret_error, ret_reason);
}
static bool machine_applies_to(Manager *m, const Rule *r, uid_t uid) {
	return kind_unit.applies_to(m, r, uid);
}
static int machine_map_set(Manager *m, Rule *r) {
	return kind_unit.map_set(m, r);
}
static void machine_map_del(Manager *m, Rule *r) {
	kind_unit.map_del(m, r);
}
static bool machine_flows(Manager *m, const Rule *r, FlowSet *fs) {
	return kind_unit.flows(m, r, fs);
}

const KindOps kind_machine = {
	.one_per_cgroup = true,
	.resolve = machine_resolve,
	.place = machine_place,
	.owner = machine_owner,
	.applies_to = machine_applies_to,
	.map_set = machine_map_set,
	.map_del = machine_map_del,
	.refresh = machine_refresh,
	.flows = machine_flows,
};
